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
- ``evaluation`` held-out audio and the vocoder evaluation table
- ``pretrained`` shipped models: weight files and the registry that names them

The Python API is ``wavegen.load(path_or_name)``, ``wavegen.load_hierarchy(recipe)`` and
``wavegen.train_model(overrides)`` (see ``wavegen/api.py`` and docs/api.md); ``__all__``
lists every public name. The subpackages above are the implementation: they may change.
"""

__version__ = "0.1.0"

# The Python API (wavegen/api.py), imported on first use: ``import wavegen`` stays cheap
# (no torch, hydra or audio libraries until a model is loaded).
_API = ("load", "load_hierarchy", "train_model", "Vocoder", "WaveNet", "Autoencoder", "Hierarchy")

__all__ = [*_API, "WavegenError", "__version__"]


def __getattr__(name: str):
    if name in _API:
        from wavegen import api

        return getattr(api, name)
    if name == "WavegenError":  # what every user error raises: catch it to handle bad input
        from wavegen.errors import WavegenError

        return WavegenError
    raise AttributeError(f"module 'wavegen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
