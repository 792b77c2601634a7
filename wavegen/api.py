"""The Python API: ``wavegen.load`` and one object per model family, ``wavegen.load_hierarchy``
and ``wavegen.train_model``.

::

    import wavegen

    vocoder = wavegen.load("piano-16k")                      # a shipped model, or a checkpoint path
    audio = vocoder.vocode(vocoder.mel(piano))               # Tensor[T] -> Tensor[n_mels, F] -> Tensor[T']
    piece = wavegen.load_hierarchy("piano_hierarchy_tiny").generate(60)   # a trained recipe -> Tensor[T]
    checkpoint = wavegen.train_model(["experiment=quickstart"])           # what `wavegen train` does -> Path

Each object owns its weights (EMA unless ``use_ema=False``), its audio config
and its device. The methods are thin wrappers over the functions the CLI uses
(:func:`wavegen.diffusion.samplers.vocode`, :func:`wavegen.generate.sampling.generate_tokens`,
the autoencoder's ``encode`` and :func:`wavegen.generate.autoencoder.decode_stream`), so the API and ``wavegen
vocode`` / ``sample`` / ``encode`` / ``decode`` / ``generate`` give the same audio for the same seed.
See docs/api.md for shape-annotated examples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import torch
from torch import Tensor

from wavegen.errors import WavegenError

# ``progress``: None/False (silent), True (a bar on stderr), or a callable ``progress(done, total)``.
Progress = Union[None, bool, Callable[[int, int], None]]

# Checkpoint keys that are weights or training state; the rest is what ``Model.info`` keeps.
_HEAVY_KEYS = ("model", "ema", "optimizer", "scheduler", "rng")


class _Reporter:
    """Turns ``progress`` into ``update(n)`` / ``close()`` calls, counting up to ``total``."""

    def __init__(self, progress: Progress, total: int, desc: str, unit: str):
        self.done, self.total, self.bar, self.callback = 0, total, None, None
        if progress is True:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True)
        elif callable(progress):
            self.callback = progress

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _device(device) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    from wavegen.models.registry import usable_device

    return usable_device(device)


class Model:
    """What every loaded model has: ``module`` (the ``nn.Module``), ``audio``, ``device``,
    ``family``, ``sampling`` (defaults), ``source`` and ``card`` (a shipped model's card text)."""

    family = ""

    def __init__(self, module: torch.nn.Module, info: dict, source: str, sampling: dict, card: Optional[str]):
        from wavegen.audio.dsp import AudioConfig

        self.module = module
        self.info = info  # the checkpoint without its weights: model_config, audio, extra, step
        self.audio = AudioConfig.from_mapping(info["audio"])
        self.source = source
        self.sampling = dict(sampling)
        self.card = card

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def to(self, device) -> "Model":
        """Move the weights to ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``); returns self."""
        self.module.to(_device(device))
        return self

    def __repr__(self) -> str:
        params = sum(p.numel() for p in self.module.parameters())
        return (f"<wavegen {type(self).__name__} from {self.source}: {params / 1e6:.2f}M parameters, "
                f"{self.audio.sample_rate} Hz, {self.device}>")

    def _default(self, value, key: str, fallback):
        return value if value is not None else self.sampling.get(key, fallback)


def _check_temperature(temperature: float) -> float:
    if not temperature >= 0:  # also refuses nan
        raise WavegenError(f"temperature must not be negative, got {temperature}")
    return float(temperature)


class Vocoder(Model):
    """A diffusion vocoder: log-mel spectrogram -> waveform."""

    family = "vocoder"

    def mel(self, audio: Tensor) -> Tensor:
        """Tensor[T] (or [B, T]) in [-1, 1] at ``sample_rate`` -> natural-log mel Tensor[n_mels, T // hop + 1]
        (or [B, n_mels, F]): exactly the front-end the vocoder was trained on."""
        from wavegen.audio.dsp import mel_spectrogram

        return mel_spectrogram(audio.float().cpu(), self.audio)

    def vocode(self, mel: Tensor, steps: Optional[int] = None, generator: Optional[torch.Generator] = None,
               progress: Progress = None, chunk_frames: int = 512, overlap_frames: int = 32,
               mel_projection: Optional[int] = None) -> Tensor:
        """Log-mel Tensor[n_mels, F] (or [B, n_mels, F]) -> audio Tensor[(F-1)·hop] (or [B, (F-1)·hop]) on the CPU.

        steps: diffusion steps; None uses the checkpoint's stored (searched or distilled)
        schedule of ``sampling["steps"]`` steps. generator: seeds the noise (a CPU
        ``torch.Generator``); the same seed gives the same audio as ``wavegen vocode --seed``.
        mel_projection: iterations pulling the output onto ``mel`` at the end
        (:func:`wavegen.audio.dsp.project_to_mel`); None uses the checkpoint's stored count.
        """
        from wavegen.diffusion import samplers
        from wavegen.models.vocoder.checkpoint import stored_mel_projection, stored_schedule

        if mel.dim() not in (2, 3) or mel.shape[-2] != self.audio.n_mels:
            raise WavegenError(f"mel must be Tensor[{self.audio.n_mels}, F] or Tensor[B, {self.audio.n_mels}, F], "
                               f"got shape {tuple(mel.shape)}")
        steps = self._default(steps, "steps", None)
        if steps is not None and int(steps) < 1:
            raise WavegenError(f"steps must be at least 1, got {steps}")
        schedule = stored_schedule(self.info, None if steps is None else int(steps))
        projection = self._default(mel_projection, "mel_projection", stored_mel_projection(self.info))
        if int(projection) < 0:
            raise WavegenError(f"mel_projection must be 0 or more, got {projection}")
        batched = mel if mel.dim() == 3 else mel[None]
        if generator is None:
            generator = torch.Generator().manual_seed(0)  # the CLI's default seed: the same audio as `wavegen vocode`
        if not progress:
            audio = samplers.vocode(self.module, batched, schedule, generator, chunk_frames, overlap_frames,
                                    mel_projection=int(projection)).float()
        else:  # the same chunks, drawn one at a time so each can be reported
            report = _Reporter(progress, max(batched.shape[-1] - 1, 0) * self.audio.hop_length, "vocode", "smp")
            pieces = []
            try:
                for piece in samplers.vocode_stream(self.module, batched, schedule, generator, chunk_frames,
                                                    overlap_frames, mel_projection=int(projection)):
                    pieces.append(piece.float().cpu())
                    report.update(piece.shape[-1])
            finally:
                report.close()
            audio = torch.cat(pieces, dim=1) if pieces else torch.zeros(batched.shape[0], 0)
        audio = audio.cpu()
        return audio if mel.dim() == 3 else audio[0]


class WaveNet(Model):
    """An unconditional (or globally conditioned) WaveNet over μ-law samples."""

    family = "wavenet"

    @torch.no_grad()
    def generate(self, seconds: float, prompt: Optional[Tensor] = None, temperature: Optional[float] = None,
                 generator: Optional[torch.Generator] = None, batch: int = 1, global_id: Optional[int] = None,
                 backend: str = "auto", chunk: int = 4000, progress: Progress = None, top_p: Optional[float] = None,
                 mixture_temperature: Optional[float] = None, onsets: str = "loop") -> Tensor:
        """``seconds`` of new audio -> Tensor[round(seconds · sample_rate)] (or [B, ...] when ``batch`` > 1).

        prompt: Tensor[P] audio at ``sample_rate`` fed first; the result is only what follows it.
        temperature: μ-law heads: the softmax temperature; mixture heads: the logistic scale's; 0 is
        greedy; default ``sampling["temperature"]`` (1.0). top_p: nucleus mass over μ-law classes (heads
        categorical and lpc_mol); default ``sampling["top_p"]`` (1.0).
        mixture_temperature: mixture heads only, the weights' temperature; default
        ``sampling["mixture_temperature"]`` (1.0). See :class:`wavegen.generate.sampling.SamplingControls`.
        onsets: a model told where notes are struck (``local_source: onsets``, e.g. piano-tiny): after the
        prompt, ``loop`` strikes in the prompt's rhythm (without a prompt, a steady pulse), ``none`` nowhere
        (:mod:`wavegen.generate.onsets`). Other models ignore it.
        """
        from wavegen.commands import check_backend
        from wavegen.generate.onsets import check_plan, onset_plan
        from wavegen.generate.sampling import SamplingControls, generate_tokens

        if not 0 < seconds < float("inf"):
            raise WavegenError(f"seconds must be a positive number, got {seconds}")
        if batch < 1:
            raise WavegenError(f"batch must be at least 1, got {batch}")
        temperature = _check_temperature(self._default(temperature, "temperature", 1.0))
        mixture_temperature = float(self._default(mixture_temperature, "mixture_temperature", 1.0))
        top_p = float(self._default(top_p, "top_p", 1.0))
        try:
            SamplingControls(temperature, top_p, mixture_temperature).check(self.module.head.kind)
        except ValueError as exc:
            raise WavegenError(str(exc)) from None
        check_backend(backend)
        try:
            check_plan(onsets)
        except ValueError as exc:
            raise WavegenError(str(exc)) from None
        net, device = self.module, self.device
        gids = None
        if net.cfg.global_classes:
            gid = 0 if global_id is None else int(global_id)
            if not 0 <= gid < net.cfg.global_classes:
                raise WavegenError(f"global_id must be in [0, {net.cfg.global_classes}), got {gid}")
            gids = torch.full((batch,), gid, dtype=torch.long, device=device)
        prompt_tokens = None
        if prompt is not None:
            if prompt.dim() != 1:
                raise WavegenError(f"prompt must be mono audio Tensor[P], got shape {tuple(prompt.shape)}")
            prompt_tokens = net.head.encode(prompt.float()).to(device)[None].repeat(batch, 1)
        total = int(round(seconds * self.audio.sample_rate))
        local = onset_plan(net, None if prompt is None else prompt.float()[None], batch, total, onsets,
                           self.audio.sample_rate)
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        report = _Reporter(progress, total, "generate", "smp")
        pieces = []
        try:
            for tokens in generate_tokens(net, total, batch_size=batch, local=local, global_ids=gids,
                                          prompt_tokens=prompt_tokens,
                                          temperature=temperature, generator=generator, chunk_size=chunk,
                                          backend=backend, top_p=top_p, mixture_temperature=mixture_temperature):
                pieces.append(net.head.decode(tokens).float().cpu())
                report.update(tokens.shape[1])
        finally:
            report.close()
        audio = torch.cat(pieces, dim=1)
        return audio if batch > 1 else audio[0]


class Autoencoder(Model):
    """An autoencoder: audio <-> scalar-quantised code indices.

    Its way back to audio depends on the decoder: a WaveNet decoder samples the audio; a mel
    decoder (``decoder_kind: mel``, e.g. the shipped ``piano-ae``) predicts the log-mel, which
    the shipped vocoder the model names (``vocoder``) turns into audio.
    """

    family = "autoencoder"

    @property
    def hop(self) -> int:
        """Audio samples per code frame."""
        return self.module.hop

    @property
    def vocoder(self) -> Optional[Vocoder]:
        """A mel decoder's vocoder (loaded on first use), None for a WaveNet decoder."""
        if self.module.decoder_kind != "mel":
            return None
        if getattr(self, "_vocoder", None) is None:
            self._vocoder = mel_decoder_vocoder(self.module, self.audio, self.device)
        return self._vocoder

    @torch.no_grad()
    def encode(self, audio: Tensor, chunk_frames: int = 4096) -> Tensor:
        """Tensor[T] (or [B, T]) in [-1, 1] -> code indices LongTensor[C, ceil(T / hop)] (or [B, C, F]) on the CPU."""
        if audio.dim() not in (1, 2):
            raise WavegenError(f"audio must be Tensor[T] or Tensor[B, T], got shape {tuple(audio.shape)}")
        return self.module.encode(audio.to(self.device), chunk_frames=chunk_frames).cpu()

    @torch.no_grad()
    def decode_mel(self, codes: Tensor, num_samples: Optional[int] = None) -> Tensor:
        """A mel decoder's log-mel: LongTensor[C, F] (or [B, C, F]) -> Tensor[n_mels, M] (or [B, n_mels, M]),
        M = ceil(num_samples / mel_hop) + 1, on the CPU (what :meth:`decode` hands the vocoder)."""
        if self.module.decoder_kind != "mel":
            raise WavegenError(f"{self.source} decodes with a WaveNet, not through a mel; use decode")
        batched = _batched_codes(codes).to(self.device)
        try:
            mel = self.module.decode_mel(batched, num_samples)
        except ValueError as exc:  # codes out of range, num_samples beyond the frames
            raise WavegenError(str(exc)) from None
        return (mel if codes.dim() == 3 else mel[0]).cpu()

    @torch.no_grad()
    def decode(self, codes: Tensor, num_samples: Optional[int] = None, temperature: Optional[float] = None,
               generator: Optional[torch.Generator] = None, backend: str = "auto", chunk: int = 4000,
               progress: Progress = None, steps: Optional[int] = None) -> Tensor:
        """Code indices LongTensor[C, F] (or [B, C, F]) -> audio Tensor[num_samples] (or [B, num_samples]).

        ``num_samples`` defaults to F · hop (pass the encoded audio's length to get it back exactly).
        WaveNet decoder: it samples the audio; ``temperature`` 0 is greedy, ``backend`` and
        ``chunk`` choose the kernels. Mel decoder: the vocoder's :meth:`Vocoder.vocode` turns
        the predicted mel into audio (``steps``: its diffusion steps, default its stored
        schedule). ``generator`` seeds the sampling either way (default seed 0).
        """
        from wavegen.commands import check_backend
        from wavegen.generate.autoencoder import decode_stream

        batched = _batched_codes(codes)  # refuses any other shape in one line
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        if self.module.decoder_kind == "mel":
            mel = self.decode_mel(codes, num_samples)
            total = codes.shape[-1] * self.hop if num_samples is None else int(num_samples)
            return vocode_to_length(self.vocoder, mel, total, steps, generator, progress)
        temperature = _check_temperature(self._default(temperature, "temperature", 1.0))
        check_backend(backend)
        batched = batched.to(self.device)
        total = batched.shape[-1] * self.hop if num_samples is None else int(num_samples)
        report = _Reporter(progress, total, "decode", "smp")
        pieces = []
        try:
            for piece in decode_stream(self.module, batched, total, temperature=temperature, generator=generator,
                                                   chunk_size=chunk, backend=backend):
                pieces.append(piece.float().cpu())
                report.update(piece.shape[1])
        except ValueError as exc:  # codes out of range, num_samples beyond the frames
            raise WavegenError(str(exc)) from None
        finally:
            report.close()
        audio = torch.cat(pieces, dim=1)
        return audio if codes.dim() == 3 else audio[0]


def _batched_codes(codes: Tensor) -> Tensor:
    if codes.dim() not in (2, 3):
        raise WavegenError(f"codes must be LongTensor[C, F] or [B, C, F], got shape {tuple(codes.shape)}")
    return codes if codes.dim() == 3 else codes[None]


def mel_decoder_vocoder(module, audio, device) -> "Vocoder":
    """The shipped vocoder a mel-decoder autoencoder names, checked to read the mel it predicts.

    module: the autoencoder (``decoder_kind: mel``); audio: its :class:`AudioConfig` (the mel
    front-end it was trained on). Shared by :class:`Autoencoder` and ``wavegen decode``.
    """
    name = module.cfg.vocoder
    if not name:
        raise WavegenError("this autoencoder decodes to a mel but names no vocoder (model config key 'vocoder')")
    vocoder = load(name, device=device)
    if not isinstance(vocoder, Vocoder):
        raise WavegenError(f"the autoencoder's vocoder {name!r} is a {vocoder.family}, not a vocoder")
    if vocoder.audio != audio:
        raise WavegenError(f"the vocoder {name!r} reads another mel than this autoencoder predicts "
                           f"({vocoder.audio} against {audio})")
    return vocoder


def vocode_to_length(vocoder: "Vocoder", mel: Tensor, num_samples: int, steps: Optional[int],
                     generator: torch.Generator, progress: Progress = None) -> Tensor:
    """Tensor[n_mels, M] (or [B, n_mels, M]) -> audio Tensor[num_samples] (or [B, num_samples]),
    vocoded by :meth:`Vocoder.vocode` (its stored schedule and mel projection unless ``steps``)."""
    audio = vocoder.vocode(mel, steps=steps, generator=generator, progress=progress)
    short = num_samples - audio.shape[-1]
    return torch.nn.functional.pad(audio, (0, short)) if short > 0 else audio[..., :num_samples]


_CLASSES = {cls.family: cls for cls in (Vocoder, WaveNet, Autoencoder)}


def _looks_like_a_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".pt", ".pth", ".ckpt"))


def load(path_or_name: str | os.PathLike, device="cpu", use_ema: bool = True,
         root: Optional[str | os.PathLike] = None) -> Model:
    """A checkpoint file or a shipped model's name -> :class:`Vocoder`, :class:`WaveNet` or :class:`Autoencoder`.

    device: ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``. use_ema: the EMA weights (a
    shipped model has only those). root: another registry folder (see :mod:`wavegen.pretrained`).
    ``sampling`` (the defaults ``generate`` uses): a shipped model's registry entry; a checkpoint's
    training config's ``sampling`` block, else none (plain sampling).
    """
    from wavegen import pretrained
    from wavegen.checkpoint import sampling_defaults
    from wavegen.models.registry import load_model

    dev = _device(device)
    text = os.fspath(path_or_name)
    if Path(text).exists() or _looks_like_a_path(text):
        module, ckpt = load_model(text, family=tuple(_CLASSES), use_ema=use_ema, device=dev)
        return _wrap(module, ckpt, text, sampling_defaults(ckpt), None)
    with pretrained.shipped_file(text, root) as (path, entry):
        module, ckpt = load_model(path, family=tuple(_CLASSES), device=dev)
    return _wrap(module, ckpt, text, entry.get("sampling") or {}, pretrained.card(text, root))


def _wrap(module, ckpt: dict, source: str, sampling: dict, card: Optional[str]) -> Model:
    info = {k: v for k, v in ckpt.items() if k not in _HEAVY_KEYS}
    if not sampling and ckpt["family"] == "vocoder":
        from wavegen.models.vocoder.checkpoint import vocoder_extra

        sampling = {"steps": int(vocoder_extra(ckpt).get("default_steps", 6))}
    return _CLASSES[ckpt["family"]](module, info, source, sampling, card)


class Hierarchy:
    """A trained hierarchy (top prior -> level-2 codes -> level-1 codes -> audio), from a recipe's run folder.

    ``hierarchy`` is the loaded :class:`wavegen.hierarchy.assembly.Hierarchy` (its models, ``down``,
    ``sample_rate``); ``checkpoints`` maps each level to the file it came from.
    """

    def __init__(self, hierarchy, checkpoints: dict):
        self.hierarchy = hierarchy
        self.checkpoints = checkpoints

    @property
    def sample_rate(self) -> int:
        return self.hierarchy.sample_rate

    @property
    def down(self) -> str:
        """The way down to audio: ``wavenet`` (the level-1 decoder) or ``vocoder`` (codes -> mel -> vocoder)."""
        return self.hierarchy.down

    @property
    def device(self) -> torch.device:
        return next(self.hierarchy.prior.parameters()).device

    def __repr__(self) -> str:
        return (f"<wavegen Hierarchy ({', '.join(self.checkpoints)}), down to audio by {self.down}, "
                f"{self.sample_rate} Hz, {self.device}>")

    @torch.no_grad()
    def generate(self, seconds: float, generator: Optional[torch.Generator] = None, temperature: float = 1.0,
                 progress: Progress = None, chunk_frames: int = 256, vocoder_steps: int = 6,
                 backend: str = "auto") -> Tensor:
        """``seconds`` of music -> Tensor[round(seconds · sample_rate)] on the CPU, sampled top-down in one pass.

        generator: its seed (``generator.initial_seed()``; default 0) seeds every level, as
        ``wavegen generate --seed`` does: each level draws from its own generator derived from
        it, so the same seed gives the CLI's audio, and calling again with the same generator
        repeats the piece. progress: True draws the CLI's per-level bars; a callable receives
        ``(samples_done, samples_total)``. The other options are the CLI's.
        """
        from wavegen.commands import check_backend
        from wavegen.hierarchy.assembly import Progress as Bars, generate_audio

        if not 0 < seconds < float("inf"):
            raise WavegenError(f"seconds must be a positive number, got {seconds}")
        if chunk_frames < 1:
            raise WavegenError(f"chunk_frames must be at least 1, got {chunk_frames}")
        temperature = _check_temperature(temperature)
        check_backend(backend)
        seed = 0 if generator is None else generator.initial_seed()
        total = int(round(seconds * self.sample_rate))
        report = _Reporter(progress if callable(progress) else None, total, "generate", "smp")
        pieces = []
        try:
            for chunk in generate_audio(self.hierarchy, total, seed, temperature, progress=Bars(bars=progress is True),
                                        chunk_frames=chunk_frames, vocoder_steps=vocoder_steps, backend=backend):
                pieces.append(chunk.float())
                report.update(chunk.shape[-1])
        finally:
            report.close()
        return torch.cat(pieces)


def load_hierarchy(recipe: Optional[str] = None, root: Optional[str | os.PathLike] = None, down: Optional[str] = None,
                   stage: Optional[str] = None, device="cpu", **checkpoints: Optional[str | os.PathLike]) -> Hierarchy:
    """A recipe's trained hierarchy -> :class:`Hierarchy`; the arguments are ``wavegen generate``'s options.

    recipe: a recipe name or file (e.g. ``piano_hierarchy_tiny``); its first ``generate`` stage
    names the checkpoints (with ``down``, the first going down to audio that way: ``wavenet`` or
    ``vocoder``; ``stage`` names one), found under ``root`` (default ``runs/<recipe>``, as
    ``wavegen recipe run`` writes it). checkpoints: ``prior``, ``level2``, ``level1``,
    ``codes_to_mel``, ``vocoder`` paths, which win over the recipe's (or replace it).
    device: ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``.
    """
    from wavegen.commands.generate import CHECKPOINT_OPTIONS, recipe_arguments
    from wavegen.hierarchy.assembly import load_hierarchy as load_levels

    unknown = sorted(set(checkpoints) - set(CHECKPOINT_OPTIONS))
    if unknown:
        raise WavegenError(f"unknown checkpoint {unknown[0]!r}; the levels are {', '.join(CHECKPOINT_OPTIONS)}")
    paths = {k: (os.fspath(v) if v is not None else None) for k, v in checkpoints.items()}
    if recipe is not None:
        base = recipe_arguments(recipe, Path(root) if root is not None else None, stage, down)
        for key in CHECKPOINT_OPTIONS:
            if paths.get(key) is None and getattr(base, key):
                paths[key] = getattr(base, key)
        down = down or base.down
        missing = [k for k in CHECKPOINT_OPTIONS if paths.get(k) and not Path(paths[k]).exists()]
        if missing:
            raise WavegenError(f"recipe {recipe!r} has not produced its checkpoints yet ({paths[missing[0]]} "
                               f"not found); run `wavegen recipe run {recipe}` first")
    if not paths.get("prior"):
        raise WavegenError("name a hierarchy: a recipe, or checkpoints prior=..., level1=...")
    down = down or "wavenet"
    h = load_levels(paths.get("prior"), paths.get("level1"), paths.get("level2"), paths.get("codes_to_mel"),
                    paths.get("vocoder"), down, str(_device(device)))
    levels = CHECKPOINT_OPTIONS if down == "vocoder" else ("prior", "level2", "level1")  # what was loaded
    return Hierarchy(h, {k: Path(paths[k]) for k in levels if paths.get(k)})


def train_model(overrides: Iterable[str] = ()) -> Path:
    """What ``wavegen train OVERRIDES`` does, from Python -> the path of the run's ``checkpoints/last.pt``.

    overrides: Hydra overrides, e.g. ``["experiment=wavenet_debug", "train.steps=20",
    "train.run_dir=/tmp/run"]``; the same config composition (and the same one-line errors for
    misspelt keys) and the same run folder (``train.run_dir``, default ``runs/<name>`` under the
    current directory) as the command, so running it again resumes from the last checkpoint.
    A SIGINT or SIGTERM saves the step in progress and raises
    :class:`wavegen.train.stopping.Interrupted`, which names the checkpoint.
    (Not ``wavegen.train``: that name is the training package.)
    """
    from wavegen.config import compose
    from wavegen.train.loop import train

    if isinstance(overrides, (str, bytes)):
        raise WavegenError(f"overrides must be a list of strings such as ['train.steps=20'], got {overrides!r}")
    cfg = compose(list(overrides))
    train(cfg)
    return Path(str(cfg.train.run_dir)).expanduser() / "checkpoints" / "last.pt"
