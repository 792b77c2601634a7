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


__all__ = ["SpectralVocoder", "VocoderConfig", "WaveGradVocoder", "build_vocoder"]
