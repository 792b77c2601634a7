"""Reverse diffusion as pure functions of (model, mel, schedule, generator).

- :func:`sample` runs one schedule over a whole mel: Tensor[B, n_mels, F] ->
  Tensor[B, F · hop] (frame ``f`` -> samples ``f·hop .. (f+1)·hop - 1``).
- :func:`vocode_stream` / :func:`vocode` do the same in overlapping chunks with
  constant memory and return the clip, Tensor[B, (F-1) · hop] (a mel of F
  centred frames describes (F-1)·hop samples); :func:`crossfade_chunks` is the
  stitching on its own, for callers whose mel arrives as a stream.

Noise comes from :class:`~wavegen.diffusion.noise.PositionalNoise`, a function of
sample position, so chunked and one-pass sampling draw identical noise and differ
only by the network's view near chunk edges (hidden by the crossfade). The
reverse step itself is :func:`wavegen.kernels.diffusion_update`.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
from torch import Tensor

from wavegen import kernels
from wavegen.audio.dsp import project_to_mel
from wavegen.diffusion.noise import PositionalNoise
from wavegen.diffusion.schedules import NoiseSchedule, schedule_from
from wavegen.errors import WavegenError
from wavegen.frames import FrameBuffer


def _model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def reverse_process(model, log_mel: Tensor, schedule: NoiseSchedule, noise: PositionalNoise,
                    start_sample: int = 0, eta: float = 1.0, mel_projection: int = 0) -> Tensor:
    """Tensor[B, n_mels, F] -> Tensor[B, F · hop]; the mel's first sample sits at ``start_sample``.

    ``noise`` supplies white noise at absolute sample positions, which the model's noise
    prior (``model.prior``, see :mod:`wavegen.diffusion.priors`) shapes with this window's
    mel: the start ``y_N`` is prior noise from stream 0, the noise added on the way to
    ``y_{n-1}`` comes from stream ``n - 1`` (n = 2 .. N). Schedules of any length thus
    start from the same draw, which distillation needs. States are never clipped: the
    chain is a linear combination of estimates, and clipping it breaks that algebra.
    ``eta`` is the stochasticity of each step (1: DDPM, 0: deterministic; see
    :meth:`NoiseSchedule.step_coefficients`). ``mel_projection`` iterations of
    :func:`wavegen.audio.dsp.project_to_mel` finish the chain: the output is pulled onto the
    mel it was asked for (0: off). Differentiable when called with grad enabled.
    """
    hop = model.hop_length
    length = log_mel.shape[-1] * hop
    prior = model.prior
    N = len(schedule)
    levels = schedule.noise_levels
    # The VP marginal at the last level is a_N·x + s_N·ε with a_N² + s_N² = 1; the shaped
    # prior has about the signal's own level, so prior noise of unit scale is that marginal
    # up to the a_N·x term, which long or searched schedules make small.
    y = prior.shape(noise.window(0, start_sample, length), log_mel)
    for n in range(N, 0, -1):
        level = torch.full((y.shape[0],), levels[n - 1], device=y.device, dtype=y.dtype)
        eps = model(y, log_mel, level)
        c1, c2, sigma = schedule.step_coefficients(n, eta)
        z = prior.shape(noise.window(n - 1, start_sample, length), log_mel) if sigma > 0 else None
        y = kernels.diffusion_update(y, eps, z, c1, c2, sigma, clamp=False)
    if mel_projection:
        y = project_to_mel(y, log_mel, model.cfg.audio(), mel_projection)
    return y


def sample(model, log_mel: Tensor, schedule, generator: Optional[torch.Generator] = None, eta: float = 1.0,
           mel_projection: int = 0) -> Tensor:
    """Vocode a whole mel in one pass: Tensor[B, n_mels, F] -> Tensor[B, F · hop].

    Deterministic for a given generator state (the generator is only used to draw
    one seed); the model is not modified.
    """
    schedule = schedule_from(schedule)
    device, dtype = _model_device_dtype(model)
    log_mel = log_mel.to(device=device, dtype=dtype)
    noise = PositionalNoise.from_generator(generator, log_mel.shape[0], device, dtype)
    with torch.inference_mode():
        return reverse_process(model, log_mel, schedule, noise, eta=eta, mel_projection=mel_projection)


def check_chunking(chunk_frames: int, overlap_frames: int) -> None:
    """One line of error for chunk sizes :func:`crossfade_chunks` cannot use."""
    if chunk_frames < 2 or not 0 <= overlap_frames <= chunk_frames // 2:
        raise WavegenError(f"need chunk_frames >= 2 and 0 <= overlap_frames <= chunk_frames / 2, "
                           f"got {chunk_frames} and {overlap_frames}")


def crossfade_chunks(
    run: Callable[[int, int], Tensor],
    num_frames: int,
    num_samples: int,
    hop: int,
    chunk_frames: int = 512,
    overlap_frames: int = 32,
) -> Iterator[Tensor]:
    """Stitch per-chunk vocoder outputs into one stream of Tensor[B, n] pieces, ``num_samples`` in all.

    ``run(start, end)`` must return the audio Tensor[B, (end-start)·hop] of mel frames
    ``start .. end-1`` (e.g. :func:`reverse_process` on that window). Chunks of
    ``chunk_frames`` overlap by ``overlap_frames``; in each overlap the outer quarters are
    dropped (the network saw zero padding there) and the middle half is crossfaded
    linearly. ``run`` is called with increasing windows, so a streaming caller may free
    frames before ``start``. Memory holds two chunks whatever the length.
    """
    check_chunking(chunk_frames, overlap_frames)
    if num_samples > num_frames * hop:
        raise WavegenError(f"{num_frames} mel frames cannot give {num_samples} samples (hop {hop})")
    if num_samples <= 0:
        return
    end = min(chunk_frames, num_frames)
    prev, prev_offset = run(0, end), 0  # audio of the previous chunk and its first sample
    fade = overlap_frames // 2 * hop
    margin = (overlap_frames * hop - fade) // 2
    ramp = torch.linspace(0.0, 1.0, fade + 2, device=prev.device, dtype=prev.dtype)[1:-1] if fade else None
    start, emitted = 0, 0
    while end < num_frames and emitted < num_samples:
        start += chunk_frames - overlap_frames
        end = min(start + chunk_frames, num_frames)
        cur, cur_offset = run(start, end), start * hop
        fade_start = cur_offset + margin
        fade_end = fade_start + fade
        pieces = [prev[:, emitted - prev_offset : fade_start - prev_offset]]
        if fade:
            a = prev[:, fade_start - prev_offset : fade_end - prev_offset]
            b = cur[:, fade_start - cur_offset : fade_end - cur_offset]
            pieces.append(a * (1 - ramp) + b * ramp)
        piece = torch.cat(pieces, dim=1)[:, : max(num_samples - emitted, 0)]
        if piece.shape[1]:
            yield piece
        emitted = min(fade_end, num_samples)
        prev, prev_offset = cur, cur_offset
    tail = prev[:, emitted - prev_offset : num_samples - prev_offset]
    if tail.shape[1]:
        yield tail


def vocode_stream(
    model,
    log_mel,
    schedule,
    generator: Optional[torch.Generator] = None,
    chunk_frames: int = 512,
    overlap_frames: int = 32,
    eta: float = 1.0,
    mel_projection: int = 0,
    num_frames: Optional[int] = None,
    num_samples: Optional[int] = None,
) -> Iterator[Tensor]:
    """Yield the vocoded clip as consecutive Tensor[B, n] pieces, chunk by chunk with constant memory.

    log_mel: Tensor[B, n_mels, F] (then (F-1)·hop samples come out), or an iterable of
    Tensor[B, n_mels, f] chunks arriving as a stream (the hierarchy's codes -> mel), with
    ``num_frames`` (their total) and ``num_samples`` (how many samples to make, at most
    (num_frames-1)·hop) given. Frames a later window does not read are freed. See
    :func:`crossfade_chunks`.
    """
    schedule = schedule_from(schedule)
    device, dtype = _model_device_dtype(model)
    hop = model.hop_length
    if isinstance(log_mel, Tensor):
        num_frames = log_mel.shape[-1]
        num_samples = max(num_frames - 1, 0) * hop if num_samples is None else num_samples
        window = lambda start, end: log_mel[..., start:end]
    else:
        if num_frames is None or num_samples is None:
            raise ValueError("a stream of mel chunks needs num_frames and num_samples")
        if (num_frames - 1) * hop < num_samples:
            raise WavegenError(f"{num_frames} mel frames describe {(num_frames - 1) * hop} samples, "
                               f"need {num_samples}")
        buffer = FrameBuffer(log_mel)

        def window(start: int, end: int) -> Tensor:
            buffer.fill_to(end)
            mel = buffer.window(start, end)
            buffer.drop_before(start)  # windows only move forward
            return mel

    noise = None

    def run(start: int, end: int) -> Tensor:
        nonlocal noise
        mel = window(start, end).to(device=device, dtype=dtype)
        if noise is None:
            noise = PositionalNoise.from_generator(generator, mel.shape[0], device, dtype)
        with torch.inference_mode():
            return reverse_process(model, mel, schedule, noise, start * hop, eta=eta, mel_projection=mel_projection)

    yield from crossfade_chunks(run, num_frames, num_samples, hop, chunk_frames, overlap_frames)


def vocode(model, log_mel: Tensor, schedule, generator: Optional[torch.Generator] = None,
           chunk_frames: int = 512, overlap_frames: int = 32, eta: float = 1.0, mel_projection: int = 0) -> Tensor:
    """Tensor[B, n_mels, F] -> Tensor[B, (F-1) · hop], chunk by chunk (see :func:`vocode_stream`)."""
    pieces = list(vocode_stream(model, log_mel, schedule, generator, chunk_frames, overlap_frames, eta, mel_projection))
    if not pieces:
        return torch.zeros(log_mel.shape[0], 0)
    return torch.cat(pieces, dim=1)
