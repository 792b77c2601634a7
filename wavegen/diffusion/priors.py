"""Noise priors: the distribution the vocoder's diffusion starts from and adds at every step.

A diffusion vocoder mixes the clean waveform with noise, ``y = a·x + s·ε``. White
``ε ~ N(0, I)`` is a poor prior for piano: the signal is full of silences, decays and
empty high bands, and any white noise left over is exactly what log-spectral metrics
punish. The priors here draw ``ε = L_c·z`` with white ``z`` and a filter ``L_c``
taken from the conditioning mel, so the noise already follows the signal:

- ``white``:    ``ε = z`` (WaveGrad).
- ``energy``:   ``ε = σ_c(t)·z`` with the per-frame level implied by the mel, interpolated
  to samples (PriorGrad, arXiv 2106.06406).
- ``spectral``: ``z`` filtered in the STFT domain by the mel's spectral envelope, so the
  noise follows the signal over time *and* frequency (SpecGrad, arXiv 2203.16749).

Both shaped priors are calibrated so the noise has about the signal's own level: its
STFT magnitude (``spectral``) or its RMS per frame (``energy``) matches what the mel
implies. The same prior shapes training noise and sampling noise.

Time alignment follows the vocoder: mel frame ``f`` is centred on sample ``f·hop`` and a
mel of ``F`` frames describes ``F·hop`` samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wavegen.audio.dsp import AudioConfig, mel_envelope, mel_level
from wavegen.errors import WavegenError

PRIORS = ("white", "energy", "spectral")

# Shaped noise never falls below this share of what a -100 dB-ish mel floor implies, so a
# silent stretch still gets a little noise to sample from (and the filter stays invertible).
_FLOOR = 1e-6


def _window(cfg: AudioConfig, device, dtype) -> Tensor:
    return torch.hann_window(cfg.win_length, device=device, dtype=dtype)


def _frames_with_end(envelope: Tensor) -> Tensor:
    """Tensor[B, K, F] -> Tensor[B, K, F + 1]: a centred STFT of F·hop samples has F + 1 frames."""
    return torch.cat([envelope, envelope[..., -1:]], dim=-1)


class NoisePrior:
    """``shape(z Tensor[B, T], log_mel Tensor[B, n_mels, F]) -> ε Tensor[B, T]`` with ``T = F·hop``."""

    def __init__(self, kind: str, audio: AudioConfig):
        if kind not in PRIORS:
            raise WavegenError(f"unknown noise prior {kind!r}; choose one of {', '.join(PRIORS)}")
        self.kind = kind
        self.audio = audio

    def __repr__(self) -> str:
        return f"NoisePrior({self.kind!r})"

    def shape(self, z: Tensor, log_mel: Tensor) -> Tensor:
        if self.kind == "white":
            return z
        if self.kind == "energy":
            return z * self.frame_std(log_mel, z.shape[-1])
        return self._spectral(z, log_mel)

    def frame_std(self, log_mel: Tensor, length: int) -> Tensor:
        """Tensor[B, n_mels, F] -> Tensor[B, length]: the signal's RMS the mel implies, per sample."""
        return mel_level(log_mel, self.audio, length, floor=_FLOOR)

    def _gain(self, log_mel: Tensor) -> Tensor:
        """Tensor[B, n_mels, F] -> Tensor[B, K, F + 1] STFT-domain gain for unit white noise."""
        cfg = self.audio
        envelope = mel_envelope(log_mel.float(), cfg)
        window = _window(cfg, log_mel.device, torch.float32)
        # Unit white noise has E|Z_k|² = Σ w² in every bin: divide it out so the shaped
        # noise's STFT magnitude is the envelope itself.
        return _frames_with_end(envelope.clamp_min(_FLOOR) / window.pow(2).sum().sqrt())

    def expected_magnitude(self, log_mel: Tensor) -> Tensor:
        """Tensor[B, n_mels, F] -> Tensor[B, K, F + 1]: the STFT magnitude the spectral prior's noise
        has per bin and frame (the mel's envelope, floored); a denoiser divides by it to whiten."""
        if self.kind != "spectral":
            raise WavegenError(f"expected_magnitude is defined for the spectral prior, not {self.kind!r}")
        window = _window(self.audio, log_mel.device, torch.float32)
        return self._gain(log_mel) * window.pow(2).sum().sqrt()

    def _spectral(self, z: Tensor, log_mel: Tensor) -> Tensor:
        cfg = self.audio
        length = z.shape[-1]
        window = _window(cfg, z.device, torch.float32)
        spec = torch.stft(z.float(), cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                          return_complex=True)
        gain = self._gain(log_mel)
        frames = min(spec.shape[-1], gain.shape[-1])
        shaped = spec[..., :frames] * gain[..., :frames]
        out = torch.istft(shaped, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True, length=length)
        return out.to(z.dtype)
