"""Signal processing in one place: μ-law companding, mel spectrograms, resampling.

Everything that depends on torchaudio lives here, so it can be swapped in one
module. torchaudio is imported lazily: ``wavegen.nn`` and ``wavegen.kernels``
must import with torch and numpy alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from functools import lru_cache
from typing import Any, Mapping

import torch
from torch import Tensor


@dataclass(frozen=True)
class AudioConfig:
    """The audio constants every model, dataset and checkpoint agrees on."""

    sample_rate: int = 16000
    mu: int = 256  # μ-law classes
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "AudioConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- μ-law


def mu_law_encode(audio: Tensor, mu: int = 256) -> Tensor:
    """Tensor[...] float in [-1, 1] -> LongTensor[...] class indices in [0, mu)."""
    import torchaudio.functional as AF

    return AF.mu_law_encoding(audio.clamp(-1.0, 1.0), mu).long()


def mu_law_decode(indices: Tensor, mu: int = 256) -> Tensor:
    """LongTensor[...] in [0, mu) -> Tensor[...] float in [-1, 1]."""
    import torchaudio.functional as AF

    return AF.mu_law_decoding(indices, mu)


def pre_emphasis(audio: Tensor, coefficient: float) -> Tensor:
    """Tensor[..., T] -> Tensor[..., T]: ``y[t] = x[t] - a x[t-1]`` (``x[-1] = 0``), clamped to [-1, 1].

    Tilts the spectrum up before μ-law quantisation, so the quantisation noise, white in the
    emphasised domain, falls below the music's own high partials once :func:`de_emphasis` tilts it
    back down (LPCNet's reason for it)."""
    if not coefficient:
        return audio
    past = torch.nn.functional.pad(audio[..., :-1], (1, 0))
    return (audio - coefficient * past).clamp(-1.0, 1.0)


def de_emphasis(audio: Tensor, coefficient: float) -> Tensor:
    """Tensor[..., T] -> Tensor[..., T]: the inverse filter ``x[t] = y[t] + a x[t-1]`` from rest.

    To continue a signal, de-emphasise the emphasised prompt and the continuation together: the
    prompt comes back unchanged and the continuation starts from its state."""
    if not coefficient:
        return audio
    import torchaudio

    a = torch.tensor([1.0, -coefficient], dtype=audio.dtype)
    b = torch.tensor([1.0, 0.0], dtype=audio.dtype)
    return torchaudio.functional.lfilter(audio, a, b, clamp=False)


# ----------------------------------------------------------------------------- mel


# The cached filterbanks below are built with inference mode off: a tensor made under
# torch.inference_mode() and cached would break autograd for every later caller in the
# process (a recipe runs sampling and then training stages in one process).


@lru_cache(maxsize=8)
def _mel_transform(cfg: AudioConfig, device: str):
    import torchaudio.transforms as T

    with torch.inference_mode(False):
        return _build_mel_transform(T, cfg, device)


def _build_mel_transform(T, cfg: AudioConfig, device: str):
    return T.MelSpectrogram(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        n_mels=cfg.n_mels,
        power=1.0,
        center=True,
        norm="slaney",
        mel_scale="slaney",
    ).to(device)


def mel_spectrogram(audio: Tensor, cfg: AudioConfig, log: bool = True) -> Tensor:
    """Tensor[B, T] (or [T]) -> Tensor[B, n_mels, T // hop + 1] magnitude mel, natural log if ``log``.

    Frames are centred, so frame ``f`` covers samples around ``f * hop``.
    """
    squeeze = audio.dim() == 1
    if squeeze:
        audio = audio[None]
    mel = _mel_transform(cfg, str(audio.device))(audio.float())
    if log:
        mel = torch.log(mel.clamp_min(1e-5))
    return mel[0] if squeeze else mel


# Mel / sample alignment, in one place. Mel frames are centred: frame m describes the
# samples around m·hop, so a mel of F frames describes (F - 1)·hop samples.


def mel_frames(num_samples: int, cfg: AudioConfig) -> int:
    """How many mel frames :func:`mel_spectrogram` returns for ``num_samples`` samples."""
    return num_samples // cfg.hop_length + 1


def frames_to_samples(frames: int, hop_length: int) -> int:
    """How many samples a mel of ``frames`` centred frames describes: ``(frames - 1) · hop``.

    The inverse of :func:`mel_frames` for hop-aligned clips.
    """
    return max(frames - 1, 0) * hop_length


def covering_mel_frames(num_samples: int, hop_length: int) -> int:
    """The fewest mel frames whose :func:`frames_to_samples` covers ``num_samples`` (a vocoder's input for them)."""
    return -(-num_samples // hop_length) + 1


@lru_cache(maxsize=8)
def _envelope_weights(cfg: AudioConfig, device: str) -> Tensor:
    """Tensor[n_fft/2 + 1, n_mels]: spreads each mel band's magnitude evenly over its bins."""
    import torchaudio.functional as AF

    with torch.inference_mode(False):
        fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate,
                                norm="slaney", mel_scale="slaney")  # [bins, mels]
        # A flat spectrum of height c gives band m the value c·Σ_k fb[k, m]; each bin then takes
        # the fb-weighted average of its bands' heights. Non-negative and smooth, unlike a pseudo-inverse.
        height = 1.0 / fb.sum(dim=0).clamp_min(1e-12)  # [mels]
        share = fb / fb.sum(dim=1, keepdim=True).clamp_min(1e-12)  # [bins, mels]
        return (share * height[None, :]).to(device)


def mel_envelope(log_mel: Tensor, cfg: AudioConfig) -> Tensor:
    """Tensor[B, n_mels, F] natural-log magnitude mel -> Tensor[B, n_fft/2 + 1, F] linear STFT magnitude envelope.

    The spectral envelope the mel implies: each STFT bin gets the height of a flat
    spectrum that would give its mel bands their values. Bins above ``f_max`` are 0.
    """
    weights = _envelope_weights(cfg, str(log_mel.device)).to(log_mel.dtype)
    return torch.einsum("km,bmf->bkf", weights, log_mel.exp())


@lru_cache(maxsize=8)
def _bin_shares(cfg: AudioConfig, device: str) -> tuple[Tensor, Tensor]:
    """(mel filterbank Tensor[K, n_mels], each bin's share of every band Tensor[K, n_mels], rows summing to 1 or 0)."""
    import torchaudio.functional as AF

    with torch.inference_mode(False):
        fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate,
                                norm="slaney", mel_scale="slaney")
        return fb.to(device), (fb / fb.sum(dim=1, keepdim=True).clamp_min(1e-12)).to(device)


def project_to_mel(audio: Tensor, log_mel: Tensor, cfg: AudioConfig, iterations: int = 1,
                   max_gain: float = 4.0) -> Tensor:
    """Tensor[B, T] audio, Tensor[B, n_mels, F] log mel -> Tensor[B, T] whose mel is closer to ``log_mel``.

    Each iteration measures the audio's own mel, and scales every STFT bin by the
    band-weighted ratio of the wanted to the measured band magnitude (each ratio kept within
    ``1/max_gain .. max_gain``), keeping the phases and the fine structure between bands.
    The gains are smooth across frequency, so the modified STFT stays nearly consistent
    and the inverse STFT keeps the change. A vocoder's output must have the mel it was
    given; this removes the slowly varying part of its error (a band too quiet or too loud)
    without touching what lies within a band. ``F`` may be ``T // hop`` (the vocoder's frames;
    the last is repeated) or ``T // hop + 1``. Differentiable.
    """
    if iterations <= 0:
        return audio
    hop, length = cfg.hop_length, audio.shape[-1]
    frames = length // hop + 1
    target = log_mel.float()
    if target.shape[-1] < frames:
        target = torch.cat([target, target[..., -1:].expand(*target.shape[:-1], frames - target.shape[-1])], dim=-1)
    target = target[..., :frames]
    fb, shares = _bin_shares(cfg, str(audio.device))
    window = torch.hann_window(cfg.win_length, device=audio.device)
    limit = math.log(max_gain)
    unweighted = (shares.sum(dim=1) == 0).float()[None, :, None]  # bins no band covers keep their level
    y = audio.float()
    for _ in range(iterations):
        spec = torch.stft(y, cfg.n_fft, hop, cfg.win_length, window, center=True, return_complex=True)
        measured = torch.einsum("km,bkf->bmf", fb, spec.abs()).clamp_min(1e-5).log()
        ratio = (target - measured).clamp(-limit, limit).exp()
        gain = torch.einsum("km,bmf->bkf", shares, ratio) + unweighted
        y = torch.istft(spec * gain, cfg.n_fft, hop, cfg.win_length, window, center=True, length=length)
    return y.to(audio.dtype)


def mel_level(log_mel: Tensor, cfg: AudioConfig, length: int, floor: float = 1e-5) -> Tensor:
    """Tensor[B, n_mels, F] -> Tensor[B, length]: the signal's RMS that the mel implies, per sample.

    Parseval on a Hann-windowed frame, RMS² ≈ 2·Σ_k |X_k|² / (n_fft · Σ w²), with ``|X_k|``
    the mel's envelope (:func:`mel_envelope`). A sample lies under the windows of the frames
    within ``win_length / 2`` of it, and whatever those frames hold can leak into it (an
    onset after silence, a release before it), so each frame takes the largest level of
    the frames whose windows overlap its centre; frame ``f`` is centred on sample ``f·hop``
    and the level is interpolated linearly between centres. Never below ``floor``.
    """
    import torch.nn.functional as F

    envelope = mel_envelope(log_mel.float(), cfg)  # [B, K, F]
    window = torch.hann_window(cfg.win_length, device=log_mel.device)
    power = 2.0 * envelope.pow(2).sum(dim=1) / (cfg.n_fft * window.pow(2).sum())  # [B, F]
    level = power.clamp_min(floor * floor).sqrt()
    reach = max(cfg.win_length // (2 * cfg.hop_length), 0)
    if reach:
        level = F.max_pool1d(level[:, None], 2 * reach + 1, stride=1, padding=reach)[:, 0]
    level = torch.cat([level, level[:, -1:]], dim=-1)[:, None]  # F + 1 centres span F·hop samples
    level = F.interpolate(level, size=length + 1, mode="linear", align_corners=True)[:, 0, :length]
    return level.to(log_mel.dtype)


def griffin_lim(log_mel: Tensor, cfg: AudioConfig, n_iter: int = 64) -> Tensor:
    """Tensor[B, n_mels, F] log mel -> Tensor[B, T] waveform by mel inversion and Griffin-Lim.

    A classical baseline for the vocoder evaluation.
    """
    import torchaudio.transforms as T

    inverse = T.InverseMelScale(
        n_stft=cfg.n_fft // 2 + 1,
        n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        norm="slaney",
        mel_scale="slaney",
    ).to(log_mel.device)
    gl = T.GriffinLim(
        n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length, power=1.0, n_iter=n_iter
    ).to(log_mel.device)
    linear = inverse(log_mel.exp()).clamp_min(0.0)
    return gl(linear)


# ----------------------------------------------------------------------------- resampling


def resample(audio: Tensor, orig_sr: int, target_sr: int) -> Tensor:
    """Tensor[..., T] at ``orig_sr`` -> Tensor[..., T'] at ``target_sr`` (band-limited sinc)."""
    if orig_sr == target_sr:
        return audio
    import torchaudio.functional as AF

    return AF.resample(audio, orig_sr, target_sr)
