"""Level-by-level decoding in bounded memory: every level is a generator of chunks.

Each function here consumes an iterator of the level above's chunks and yields its
own, pulling only as many upstream frames as the next chunk needs (plus the few
frames of look-ahead its non-causal parts read). Chaining them gives one pass from
the top prior to audio whose memory does not depend on the duration::

    top = sample_top(prior, F_top, ...)                     LongTensor[B, C2, n] chunks
    lvl1 = decode_codes(level2, top, F_1, ...)              LongTensor[B, C1, n] chunks
    audio = decode_wavenet(autoencoder, lvl1, N, ...)       Tensor[B, n] chunks in [-1, 1]
       or  vocode_stream(vocoder, codes_to_mel(c2m, lvl1, ...), ..., num_frames=M, num_samples=N)
           (the vocoder's one front-end, :func:`wavegen.diffusion.samplers.vocode_stream`, fed a stream)

Samplers stay pure functions of (model, inputs, schedule, generator): the same seed
and chunk sizes give the same audio.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator, Optional

import torch
from torch import Tensor

from wavegen.errors import WavegenError
from wavegen.frames import FrameBuffer


def sample_conditioned(net, features: Iterable[Tensor], num_steps: int, batch: int = 1,
                       generator: Optional[torch.Generator] = None, temperature: float = 1.0,
                       chunk_frames: int = 64, backend: str = "auto") -> Iterator[Tensor]:
    """Sample a locally conditioned WaveNet, pulling conditioning frames as it goes.

    net: a :class:`~wavegen.models.wavenet.WaveNet` with ``local_hop`` steps per frame;
    features: Tensor[B, C, n] chunks of conditioning values (at least ceil(num_steps / hop)
    frames in all). Yields LongTensor[B, <= chunk_frames·hop] tokens, ``num_steps`` in all:
    the one sampling loop (:func:`~wavegen.generate.sampling.generate_tokens`) with the
    conditioning streamed (:class:`~wavegen.generate.frames.StreamedLocal`), so the result
    equals conditioning on the whole clip at once.
    """
    from wavegen.generate.frames import StreamedLocal
    from wavegen.generate.sampling import generate_tokens

    hop = net.cfg.local_hop
    local = StreamedLocal(features, math.ceil(num_steps / hop))
    yield from generate_tokens(net, num_steps, batch_size=batch, local=local, temperature=temperature,
                               generator=generator, chunk_size=chunk_frames * hop, backend=backend)


def sample_top(prior, num_frames: int, batch: int = 1, generator: Optional[torch.Generator] = None,
               temperature: float = 1.0, chunk_frames: int = 256, backend: str = "auto") -> Iterator[Tensor]:
    """A top prior -> LongTensor[B, C, n] code chunks, ``num_frames`` in all.

    A :class:`~wavegen.models.prior.CodePrior` samples frame by frame through the WaveNet
    step API; an :class:`~wavegen.models.event_transformer.EventTransformer` event by event
    through its own step (same protocol: a state, pre-drawn uniforms from ``generator``).
    """
    from wavegen.generate.sampling import generate_tokens
    from wavegen.codes.joint import from_joint

    if hasattr(prior, "feed"):
        yield from sample_events(prior, num_frames, batch, generator, temperature, chunk_frames)
        return

    for tokens in generate_tokens(prior.net, num_frames, batch_size=batch, temperature=temperature,
                                  generator=generator, chunk_size=chunk_frames, backend=backend):
        yield from_joint(tokens, prior.levels)


def sample_events(model, num_frames: int, batch: int = 1, generator: Optional[torch.Generator] = None,
                  temperature: float = 1.0, chunk_frames: int = 256) -> Iterator[Tensor]:
    """The event Transformer -> LongTensor[B, C, n] code chunks: each stream's events expanded to frames,
    its last one cut so that exactly ``num_frames`` come out. Streams advance together, one event each per
    step; a chunk is yielded once every stream has ``chunk_frames`` frames ready. The KV cache is a sliding
    window, and a stream runs ahead of the slowest by at most ``chunk_frames`` events: memory stays bounded."""
    from wavegen.codes.joint import from_joint

    device = next(model.parameters()).device
    state = model.init_state(batch, device)
    pending = [[] for _ in range(batch)]  # per stream: LongTensor[n] joint values not yet yielded
    ready = torch.zeros(batch, dtype=torch.long)  # frames pending per stream
    produced = 0
    while produced < num_frames:
        want = min(chunk_frames, num_frames - produced)
        while int(ready.min()) < want:
            uniforms = torch.rand(1, batch, 2, generator=generator).to(device)
            event = model.step(state, uniforms, temperature)[:, 0]  # [B, 2]
            for b in range(batch):  # every stream keeps every event it drew: its state has consumed it
                pending[b].append(event[b, 0].expand(int(event[b, 1])).cpu())
                ready[b] += int(event[b, 1])
        rows = []
        for b in range(batch):
            frames = torch.cat(pending[b])
            rows.append(frames[:want])
            pending[b] = [frames[want:]]
            ready[b] -= want
        yield from_joint(torch.stack(rows), model.levels)  # [B, C, want]
        produced += want


def decode_codes(level2, upper: Iterable[Tensor], num_frames: int, batch: int = 1,
                 generator: Optional[torch.Generator] = None, temperature: float = 1.0,
                 chunk_frames: int = 64, backend: str = "auto") -> Iterator[Tensor]:
    """A level-2 autoencoder's decoder: upper code chunks LongTensor[B, C2, n] -> level-1 LongTensor[B, C1, m]."""
    from wavegen.codes.joint import from_joint

    features = (level2.upper_values(chunk) for chunk in upper)
    for tokens in sample_conditioned(level2.net, features, num_frames, batch, generator, temperature,
                                     chunk_frames, backend):
        yield from_joint(tokens, level2.levels)


def decode_wavenet(autoencoder, codes: Iterable[Tensor], num_samples: int, batch: int = 1,
                   generator: Optional[torch.Generator] = None, temperature: float = 1.0,
                   chunk_frames: int = 64, backend: str = "auto") -> Iterator[Tensor]:
    """The level-1 autoencoder's WaveNet decoder: code chunks LongTensor[B, C1, n] -> audio Tensor[B, m]."""
    features = (autoencoder.decode_codes(chunk.to(next(autoencoder.parameters()).device)) for chunk in codes)
    head = autoencoder.decoder.head
    for tokens in sample_conditioned(autoencoder.decoder, features, num_samples, batch, generator, temperature,
                                     chunk_frames, backend):
        yield head.decode(tokens).float()


def codes_to_mel(model, codes: Iterable[Tensor], num_samples: int, chunk_frames: int = 256) -> Iterator[Tensor]:
    """Level-1 code chunks -> log-mel chunks Tensor[B, n_mels, m] for ``num_samples`` of audio.

    Yields :meth:`~wavegen.models.codes_to_mel.CodesToMel.num_mel_frames` frames in all (one
    more than the audio needs, so the vocoder's output covers every sample). The model is
    non-causal: each chunk is computed from a window with ``model.context`` frames either side.
    """
    total_codes = model.num_code_frames(num_samples)
    total_mel = model.num_mel_frames(num_samples)
    ctx = model.context
    device = next(model.parameters()).device
    buffer = FrameBuffer(codes)
    next_mel, a = 0, 0
    with torch.no_grad():
        while next_mel < total_mel:
            b = min(a + chunk_frames, total_codes)
            need = min(b + ctx, total_codes)
            buffer.fill_to(need)
            lo = max(0, a - ctx)
            out = model.per_frame(model.code_values(buffer.window(lo, need).to(device)))[..., a - lo : b - lo]
            # Mel frame m reads the code frame its centre falls in (the last one past the end).
            stop_mel = total_mel if b == total_codes else min(total_mel, model.mel_frames_before(b))
            picks = torch.clamp(model.code_frame_of(torch.arange(next_mel, stop_mel, device=device)),
                                max=total_codes - 1) - a
            if picks.numel():
                yield out[..., picks]
            next_mel, a = stop_mel, b
            buffer.drop_before(a - ctx)
