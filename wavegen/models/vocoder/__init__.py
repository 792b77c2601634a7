"""The diffusion vocoder: log mel -> waveform (WaveGrad, arXiv 2009.00713).

- :mod:`.config`   :class:`VocoderConfig` and its checks against the audio config
- :mod:`.layers`   noise-level encoding, FiLM, UBlock, DBlock
- :mod:`.wavegrad` :class:`WaveGradVocoder`, the noise-predicting network

Samplers, schedules, schedule search and distillation live in :mod:`wavegen.diffusion`.
"""

from wavegen.models.vocoder.config import VocoderConfig
from wavegen.models.vocoder.wavegrad import WaveGradVocoder


def frames_to_samples(frames: int, hop_length: int) -> int:
    """How many samples a mel of ``frames`` centred frames describes: ``(frames - 1) · hop``.

    The inverse of :func:`wavegen.audio.dsp.mel_frames` for hop-aligned clips.
    """
    return max(frames - 1, 0) * hop_length


__all__ = ["VocoderConfig", "WaveGradVocoder", "frames_to_samples"]
