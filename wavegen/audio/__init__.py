"""Audio file I/O (:mod:`wavegen.audio.io`), DSP (:mod:`wavegen.audio.dsp`) and plots."""
