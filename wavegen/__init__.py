"""wavegen: generate music as raw audio.

The package is laid out by architecture layer:

- ``audio``     file I/O (soundfile) and signal processing (μ-law, mel, resampling)
- ``data``      the embedded piano set, MAESTRO, folders of audio, segment sampling
- ``nn``        building blocks: causal convolutions, output heads, incremental state
- ``models``    WaveNet, autoencoder, vocoder and priors, each built from ``nn``
- ``codes``     scalar quantisation, slowness control, run-length events, code files
- ``diffusion`` noise schedules and samplers (pure functions)
- ``kernels``   fused inference ops: pure-PyTorch reference, C++ and CUDA
- ``train``     the training loop, checkpoints, loggers, distributed set-up
- ``generate``  sampling loops, hierarchy decoding, streaming WAV writing
- ``tasks``     one adapter per model family that the training loop drives
"""

__version__ = "0.1.0"
