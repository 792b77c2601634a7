"""The diffusion vocoder: log mel -> waveform (WaveGrad, arXiv 2009.00713).

- :mod:`.config`   :class:`VocoderConfig` and its checks against the audio config
- :mod:`.layers`   noise-level encoding, FiLM, UBlock, DBlock
- :mod:`.base`     :class:`DiffusionVocoder`, the interface every denoiser shares
- :mod:`.wavegrad` :class:`WaveGradVocoder`, the waveform-domain denoiser
- :mod:`.spectral` :class:`SpectralVocoder`, the STFT-domain denoiser (same interface)

Samplers, schedules, schedule search and distillation live in :mod:`wavegen.diffusion`.
"""

from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.vocoder.spectral import SpectralVocoder
from wavegen.models.vocoder.wavegrad import WaveGradVocoder


def build_vocoder(cfg: VocoderConfig):
    """The denoiser ``cfg.architecture`` names, built from ``cfg``."""
    cfg.validate()
    return SpectralVocoder(cfg) if cfg.architecture == "spectral" else WaveGradVocoder(cfg)


def frames_to_samples(frames: int, hop_length: int) -> int:
    """How many samples a mel of ``frames`` centred frames describes: ``(frames - 1) · hop``.

    The inverse of :func:`wavegen.audio.dsp.mel_frames` for hop-aligned clips.
    """
    return max(frames - 1, 0) * hop_length


__all__ = ["SpectralVocoder", "VocoderConfig", "WaveGradVocoder", "build_vocoder", "frames_to_samples"]
