"""A hierarchy's checkpoints, loaded and checked to fit together, and its one-pass generation.

:func:`load_hierarchy` reads the checkpoints (EMA weights) and checks, with one-line
errors, that each level models the codes the one below was trained on (levels, hop and
the fingerprint of the weights that defined the codes). :func:`generate_audio` chains
the streaming levels of :mod:`wavegen.hierarchy.streaming`; :func:`generate_to_files`
writes the WAV, a spectrogram PNG, every level's codes (.npy) and a JSON summary.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from wavegen.atomic import atomic_write, publish
from wavegen.errors import WavegenError
from wavegen.hierarchy.provenance import weights_fingerprint

DOWN_PATHS = ("wavenet", "vocoder")


@dataclass
class Hierarchy:
    prior: object  # CodePrior or EventTransformer
    level1: Optional[object] = None  # WaveNetAutoencoder (needed for down="wavenet")
    level2: Optional[object] = None  # CodeAutoencoder
    codes_to_mel: Optional[object] = None  # CodesToMel (down="vocoder")
    vocoder: Optional[object] = None  # WaveGradVocoder (down="vocoder")
    audio: dict = field(default_factory=dict)
    down: str = "wavenet"
    vocoder_schedule: Optional[list] = None  # the vocoder checkpoint's stored default schedule (betas)
    vocoder_projection: int = 0  # its stored mel-projection iterations

    @property
    def sample_rate(self) -> int:
        return int(self.audio["sample_rate"])

    @property
    def level1_hop(self) -> int:
        if self.level1 is not None:
            return self.level1.hop
        if self.level2 is not None:
            return self.level2.cfg.hop
        return self.codes_to_mel.cfg.hop

    def levels(self) -> list[dict]:
        """Per code level, top first: name, levels, hop, frames/s and fixed-rate bits/s."""
        rows = []
        if self.level2 is not None:
            rows.append(("level2", self.level2.upper_levels, self.level2.hop))
            rows.append(("level1", self.level2.levels, self.level2.cfg.hop))
        else:
            rows.append(("level1", self.prior.levels, self.prior.hop))
        out = []
        for name, levels, hop in rows:
            rate = self.sample_rate / hop
            out.append({"name": name, "levels": list(levels), "hop": hop, "frames_per_second": rate,
                        "bits_per_second_fixed": rate * sum(math.log2(v) for v in levels)})
        return out


def _load(path, family, device):
    from wavegen.models.registry import load_model

    model, state = load_model(path, family=family, device=device)
    return model, state


def load_hierarchy(prior: str, level1: Optional[str] = None, level2: Optional[str] = None,
                   codes_to_mel: Optional[str] = None, vocoder: Optional[str] = None, down: str = "wavenet",
                   device: str = "cpu") -> Hierarchy:
    """Load and cross-check a hierarchy's checkpoints (paths); see the module docstring."""
    from wavegen.models.prior import CodeAutoencoder, CodePrior

    if down not in DOWN_PATHS:
        raise WavegenError(f"unknown way down to audio {down!r}; choose one of {DOWN_PATHS}")
    if down == "wavenet" and not level1:
        raise WavegenError("the WaveNet way down needs the level-1 autoencoder checkpoint (--level1)")
    if down == "vocoder" and not (codes_to_mel and vocoder):
        raise WavegenError("the vocoder way down needs --codes-to-mel and --vocoder checkpoints")
    from wavegen.models.event_transformer import EventTransformer

    top, top_state = _load(prior, ("prior", "event_prior"), device)
    if not isinstance(top, (CodePrior, EventTransformer)):
        raise WavegenError(f"{prior} is a level-2 autoencoder, not a top prior (pass it as --level2)")
    h = Hierarchy(prior=top, audio=dict(top_state.get("audio") or {}), down=down)

    def same_audio(path, state):
        if state.get("audio") and h.audio and state["audio"] != h.audio:
            raise WavegenError(f"{path} was trained with other audio settings than {prior}")

    # What the prior models: level-2 codes (with a level 2) or level-1 codes.
    below_fp = None
    if level2:
        h.level2, s2 = _load(level2, "prior", device)
        same_audio(level2, s2)
        if not isinstance(h.level2, CodeAutoencoder):
            raise WavegenError(f"{level2} is a top prior, not a level-2 autoencoder")
        if (top.levels, top.hop) != (h.level2.upper_levels, h.level2.hop):
            raise WavegenError(f"{prior} models codes with levels {top.levels} at hop {top.hop}, but {level2} "
                               f"writes levels {h.level2.upper_levels} at hop {h.level2.hop}")
        _check_fingerprint(prior, top_state, weights_fingerprint(h.level2), level2)
        below_fp = s2["model_config"].get("codes_fingerprint")
    if level1:
        h.level1, s1 = _load(level1, "autoencoder", device)
        same_audio(level1, s1)
        modelled = h.level2 if h.level2 is not None else top
        if (modelled.levels, modelled.cfg.hop) != (h.level1.levels, h.level1.hop):
            raise WavegenError(f"{level2 or prior} models level-1 codes with levels {modelled.levels} at hop "
                               f"{modelled.cfg.hop}, but {level1} has levels {h.level1.levels} at hop {h.level1.hop}")
        below_fp = weights_fingerprint(h.level1)
        if h.level2 is not None:
            _check_fingerprint(level2, s2, below_fp, level1)
        else:
            _check_fingerprint(prior, top_state, below_fp, level1)
    if down == "vocoder":
        h.codes_to_mel, sc = _load(codes_to_mel, "codes_to_mel", device)
        same_audio(codes_to_mel, sc)
        expected = sc["model_config"].get("codes_fingerprint")
        if expected and below_fp and expected != below_fp:
            raise WavegenError(f"{codes_to_mel} was trained on another level-1 autoencoder's codes")
        if h.codes_to_mel.cfg.hop != h.level1_hop or h.codes_to_mel.cfg.levels != _level1_levels(h):
            raise WavegenError(f"{codes_to_mel} reads codes of levels {h.codes_to_mel.cfg.levels} at hop "
                               f"{h.codes_to_mel.cfg.hop}, not this hierarchy's level-1 codes")
        h.vocoder, sv = _load(vocoder, "vocoder", device)
        same_audio(vocoder, sv)
        if h.vocoder.hop_length != h.codes_to_mel.cfg.mel_hop:
            raise WavegenError(f"{vocoder} has hop {h.vocoder.hop_length}, codes_to_mel writes mel hop "
                               f"{h.codes_to_mel.cfg.mel_hop}")
        from wavegen.models.vocoder.checkpoint import stored_mel_projection, stored_schedule, vocoder_extra

        # The vocoder's own inference settings, read where its checkpoint keeps them.
        h.vocoder_schedule = stored_schedule(sv).to_list() if vocoder_extra(sv).get("schedules") else None
        h.vocoder_projection = stored_mel_projection(sv)
    return h


def _level1_levels(h: Hierarchy) -> list[int]:
    if h.level1 is not None:
        return h.level1.levels
    return h.level2.levels if h.level2 is not None else h.prior.levels


def _check_fingerprint(reader_path, reader_state, writer_fingerprint: str, writer_path) -> None:
    """The reader was trained on codes of the weights with ``writer_fingerprint`` (when it recorded which)."""
    expected = reader_state["model_config"].get("codes_fingerprint")
    if expected and expected != writer_fingerprint:
        raise WavegenError(f"{reader_path} was trained on codes of other weights than {writer_path}; "
                           "use the checkpoints of one hierarchy")


# ----------------------------------------------------------------------------- generation


@dataclass
class Progress:
    """Per-level counters (and tqdm bars when ``bars``): frames or samples produced so far."""

    bars: bool = True
    counts: dict = field(default_factory=dict)
    _bars: dict = field(default_factory=dict)

    def track(self, name: str, chunks: Iterable[Tensor], total: int, unit: str) -> Iterator[Tensor]:
        bar = None
        if self.bars:
            from tqdm import tqdm

            # One line per level (they advance together, each pulling from the one above).
            bar = tqdm(total=total, desc=name, unit=unit, unit_scale=True, dynamic_ncols=True, leave=True,
                       position=len(self._bars))
            self._bars[name] = bar
        self.counts[name] = 0
        try:
            for chunk in chunks:
                self.counts[name] += chunk.shape[-1]
                if bar is not None:
                    bar.update(chunk.shape[-1])
                yield chunk
        finally:
            if bar is not None:
                bar.close()


def generate_audio(h: Hierarchy, num_samples: int, seed: int = 0, temperature: float = 1.0,
                   on_codes: Optional[Callable[[str, Tensor], None]] = None, progress: Optional[Progress] = None,
                   chunk_frames: int = 256, vocoder_steps: int = 6, backend: str = "auto") -> Iterator[Tensor]:
    """Sample the hierarchy top-down; yields audio Tensor[n] chunks, exactly ``num_samples`` in all.

    on_codes(level_name, LongTensor[C, n]) sees every code chunk on its way down (to save it).
    Each level draws from its own generator seeded from ``seed``, so a level's randomness
    does not depend on how much the others consumed.
    """
    from wavegen.hierarchy import streaming as S

    if num_samples < 1:
        raise WavegenError(f"nothing to generate: {num_samples} samples")
    progress = progress or Progress(bars=False)
    gens = [torch.Generator().manual_seed(int(seed) * 7919 + level) for level in range(4)]

    def record(name, chunks):
        for chunk in chunks:
            if on_codes is not None:
                on_codes(name, chunk[0].cpu())
            yield chunk

    frames1 = math.ceil(num_samples / h.level1_hop)
    if h.level2 is not None:
        frames2 = math.ceil(frames1 / h.level2.stride)
        top = S.sample_top(h.prior, frames2, 1, gens[0], temperature, max(chunk_frames, 64), backend)
        top = progress.track("level 2 (prior)", record("level2", top), frames2, "frm")
        level1 = S.decode_codes(h.level2, top, frames1, 1, gens[1], temperature, chunk_frames, backend)
        level1 = progress.track("level 1 (level-2 decoder)", record("level1", level1), frames1, "frm")
    else:
        level1 = S.sample_top(h.prior, frames1, 1, gens[0], temperature, max(chunk_frames, 64), backend)
        level1 = progress.track("level 1 (prior)", record("level1", level1), frames1, "frm")
    if h.down == "wavenet":
        audio = S.decode_wavenet(h.level1, level1, num_samples, 1, gens[2], temperature, chunk_frames, backend)
        name = "audio (WaveNet decoder)"
    else:
        from wavegen.diffusion.samplers import vocode_stream
        from wavegen.diffusion.schedules import default_schedule

        schedule = h.vocoder_schedule or default_schedule(vocoder_steps)
        mel_frames = h.codes_to_mel.num_mel_frames(num_samples)
        mel = S.codes_to_mel(h.codes_to_mel, level1, num_samples, chunk_frames=4 * chunk_frames)
        audio = (piece.float() for piece in vocode_stream(
            h.vocoder, mel, schedule, gens[3], chunk_frames=128, overlap_frames=16,
            mel_projection=h.vocoder_projection, num_frames=mel_frames, num_samples=num_samples))
        name = "audio (codes -> mel -> vocoder)"
    for chunk in progress.track(name, audio, num_samples, "smp"):
        yield chunk[0].cpu()


class NpyStream:
    """Code frames appended to a ``uint8[C, F]`` .npy of known size, via a memory map (bounded memory).

    Also counts the run-length events of what it stores (a new event wherever any
    channel changes), so the summary can state the rate the generated codes ran at.
    """

    def __init__(self, path: Path, channels: int, frames: int):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.uint8, shape=(channels, frames))
        self.filled = 0
        self.events = 0

    def write(self, chunk: Tensor) -> None:
        n = min(chunk.shape[-1], self.array.shape[1] - self.filled)
        if n == 0:
            return
        values = chunk[:, :n].numpy().astype(np.uint8)
        previous = self.array[:, self.filled - 1 : self.filled] if self.filled else None
        joined = values if previous is None else np.concatenate([previous, values], axis=1)
        self.events += int((joined[:, 1:] != joined[:, :-1]).any(axis=0).sum()) + (previous is None)
        self.array[:, self.filled : self.filled + n] = values
        self.filled += n

    def finish(self) -> None:
        if self.filled != self.array.shape[1]:
            raise WavegenError(f"{self.path}: {self.filled} of {self.array.shape[1]} frames were generated")
        self.array.flush()
        del self.array
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.array = None
        self.tmp.unlink(missing_ok=True)


def output_paths(wav: Path, h: Hierarchy) -> dict[str, Path]:
    stem = wav.with_suffix("")
    paths = {"wav": wav, "png": stem.with_suffix(".png"), "json": stem.with_suffix(".json")}
    for level in h.levels():
        paths[level["name"]] = Path(f"{stem}.{level['name']}.npy")
    return paths


def generate_to_files(h: Hierarchy, wav: Path, seconds: float, seed: int = 0, overwrite: bool = False,
                      temperature: float = 1.0, progress: bool = True, chunk_frames: int = 256,
                      vocoder_steps: int = 6, backend: str = "auto", log: Callable[[str], None] = print) -> dict:
    """Generate ``seconds`` of audio into ``wav`` (+ .png, .json, .<level>.npy); returns the summary.

    Every output is written under a temporary name and renamed when complete, so a failed or
    interrupted run leaves no half-written file and never replaces an existing one.
    """
    from wavegen.audio.dsp import AudioConfig
    from wavegen.audio.io import StreamingWavWriter
    from wavegen.hierarchy.spectrogram import BoundedSpectrogram

    wav = Path(wav).expanduser()
    if wav.suffix.lower() != ".wav":
        raise WavegenError(f"the output must be a .wav file: {wav}")
    if not seconds > 0 or not math.isfinite(seconds):
        raise WavegenError(f"--seconds must be positive, got {seconds}")
    paths = output_paths(wav, h)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise WavegenError(f"output already exists: {existing[0]} (pass --overwrite to replace it)")
    wav.parent.mkdir(parents=True, exist_ok=True)
    num_samples = int(round(seconds * h.sample_rate))
    frames1 = math.ceil(num_samples / h.level1_hop)
    sizes = {"level1": frames1}
    if h.level2 is not None:
        sizes["level2"] = math.ceil(frames1 / h.level2.stride)
    code_files = {lvl["name"]: NpyStream(paths[lvl["name"]], len(lvl["levels"]), sizes[lvl["name"]])
                  for lvl in h.levels()}
    tmp_wav = wav.with_name(f".{wav.stem}.partial.wav")
    tmp_wav.unlink(missing_ok=True)
    spectrogram = BoundedSpectrogram(AudioConfig.from_mapping(h.audio))
    bars = Progress(bars=progress)
    started = time.perf_counter()
    try:
        with StreamingWavWriter(tmp_wav, h.sample_rate) as writer:
            for chunk in generate_audio(h, num_samples, seed, temperature, lambda n, c: code_files[n].write(c),
                                        bars, chunk_frames, vocoder_steps, backend):
                writer.write(chunk)
                spectrogram.push(chunk)
            written = writer.frames_written
        if written != num_samples:
            raise WavegenError(f"generated {written} samples instead of {num_samples}")
        elapsed = time.perf_counter() - started
        for stream in code_files.values():
            stream.finish()
        levels = [{**lvl, "events_per_second_generated": code_files[lvl["name"]].events * h.sample_rate / num_samples}
                  for lvl in h.levels()]
        spectrogram.save_png(paths["png"], title=f"{wav.name}: {seconds:g} s, seed {seed}, down: {h.down}")
        summary = {"wav": str(wav), "seconds": num_samples / h.sample_rate, "samples": num_samples,
                   "seed": seed, "down": h.down, "levels": levels, "generation_seconds": elapsed,
                   "real_time_factor": elapsed / (num_samples / h.sample_rate)}
        atomic_write(paths["json"], json.dumps(summary, indent=1).encode("utf-8"))
        publish(tmp_wav, wav)
    except BaseException:
        for stream in code_files.values():
            if stream.tmp.exists():
                stream.abort()
        tmp_wav.unlink(missing_ok=True)
        raise
    log(f"wrote {wav} ({num_samples / h.sample_rate:g} s, {num_samples} samples) with {paths['png'].name}, "
        f"{', '.join(paths[l['name']].name for l in h.levels())} and {paths['json'].name}; "
        f"{elapsed:.1f} s to generate (real-time factor {summary['real_time_factor']:.2f})")
    return summary
