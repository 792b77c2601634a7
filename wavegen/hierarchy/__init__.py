"""Hierarchical long-form generation: code sets, level assembly and streaming decoding.

A hierarchy is a stack of models, each turning slower codes into faster ones::

    top prior (WaveNet over joint code indices)          -> top codes     (e.g. 62.5 frames/s)
    level-2 decoder (conditional WaveNet over codes)     -> level-1 codes (e.g. 250 frames/s)
    level-1 decoder (autoencoder WaveNet on audio)       -> audio         (16 kHz)
      or codes -> mel -> diffusion vocoder               -> audio

Modules:

- :mod:`~wavegen.hierarchy.codeset`     a dataset split encoded into code files (what priors train on)
- :mod:`~wavegen.hierarchy.event_data`  run-length event windows for the event Transformer prior
- :mod:`~wavegen.hierarchy.streaming`   bounded-memory, chunk-by-chunk sampling of each level
- :mod:`~wavegen.hierarchy.assembly`    loading a hierarchy's checkpoints and checking they fit together
- :mod:`~wavegen.hierarchy.spectrogram` a spectrogram of any length in bounded memory
- :mod:`~wavegen.hierarchy.randomised`  random-weight hierarchies for tests and speed benchmarks
- :mod:`~wavegen.hierarchy.provenance`  which weights defined a level's codes (checked by generate)

The top prior may also be a run-length event Transformer
(:mod:`wavegen.models.event_transformer`). See docs/hierarchy.md.
"""
