"""The training loop every model family shares.

What a family brings is a :class:`~wavegen.tasks.base.Task`; what the loop
brings is the rest: AdamW with warm-up and cosine decay, gradient clipping,
bf16 autocast on GPU for the families that allow it, EMA weights, validation,
media logging, non-finite loss guarding, atomic resumable checkpoints and
distributed data parallelism.

SIGINT and SIGTERM stop a run cleanly: the step in progress finishes, every rank
agrees to stop at that step, rank 0 saves it and :class:`Interrupted` is raised
(``wavegen train`` turns it into one line and exit status 130 / 143). One process
at a time may train in a run directory (a ``flock``, see :mod:`wavegen.locking`).

Resuming is exact: batches are a pure function of (seed, step, rank) and the
checkpoint holds every RNG state, so a stopped and resumed run ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from wavegen.atomic import atomic_write
from wavegen.checkpoint import load_checkpoint
from wavegen.errors import WavegenError
from wavegen.train import distributed as D
from wavegen.train.checkpoint import latest_checkpoint, save_checkpoint
from wavegen.train.ema import EMA
from wavegen.train.stopping import Interrupted, StopRequests


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warm-up to 1, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[2] if random.getstate()[2] is not None else -1],
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "numpy_gauss": [float(np.random.get_state()[3]), float(np.random.get_state()[4])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # This process's device only: reading every GPU's state would open a CUDA context on each
        # of them from every rank (hundreds of MB per GPU and process on an 8-GPU node).
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    *mt, gauss = state["python"]
    random.setstate((3, tuple(int(x) for x in mt), None if gauss == -1 else gauss))
    has_gauss, gauss = state.get("numpy_gauss", [0, 0.0])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         int(has_gauss), float(gauss)))
    cuda = state.get("cuda")
    if isinstance(cuda, (list, tuple)):  # older checkpoints held every device's state
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        cuda = cuda[index] if index < len(cuda) else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(task, amp: str, device_type: str) -> Optional[torch.dtype]:
    """The dtype a training step autocasts to, or None (float32): bf16 on CUDA unless
    ``train.amp`` is off, and only for a family whose ``task.autocast_dtype`` allows it (None
    where precision decides quality: mixture-of-logistics likelihoods, the vocoder)."""
    dtype = getattr(task, "autocast_dtype", torch.bfloat16)
    return dtype if amp != "off" and device_type == "cuda" else None


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def _check_run_dir(run_dir: Path, cfg_container: dict) -> None:
    """Refuse to resume a run directory that holds a different model."""
    import yaml

    if run_dir.exists() and not run_dir.is_dir():
        raise WavegenError(f"train.run_dir {run_dir} is a file, not a folder; pick another train.run_dir")
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    try:
        previous = yaml.safe_load(saved.read_text()) or {}
    except Exception:
        return
    for key in ("model", "audio"):
        if previous.get(key) != cfg_container.get(key):
            raise WavegenError(
                f"{run_dir} holds a run with a different '{key}' config; pick another train.run_dir or delete it"
            )


def _check_sample_rate(audio: dict) -> None:
    """An absurd audio.sample_rate would otherwise fail deep inside data rendering or resampling."""
    from wavegen.audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    rate = audio.get("sample_rate")
    if not isinstance(rate, int) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavegenError(f"audio.sample_rate={rate!r} is not a usable rate "
                           f"(expected an integer in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)")


def _check_train_counts(train_cfg) -> None:
    """Steps and intervals must be whole numbers >= 1: 0 would divide by zero or never checkpoint."""
    for key in ("steps", "log_every", "val_every", "checkpoint_every", "media_every", "max_nonfinite", "val_batches"):
        value = train_cfg.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or value != int(value):
            raise WavegenError(f"train.{key} must be a whole number of at least 1, got {value!r}")


def _check_time_limit(train_cfg) -> None:
    minutes, clock = train_cfg.get("max_minutes"), train_cfg.get("minutes_clock", "wall")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0):
        raise WavegenError(f"train.max_minutes must be a positive number of minutes (or null), got {minutes!r}")
    if clock not in ("wall", "cpu"):
        raise WavegenError(f"train.minutes_clock must be 'wall' or 'cpu', got {clock!r}")


def _write_text_atomic(path: Path, text: str) -> None:
    """A kill mid-write must not leave a half config.yaml, which would block resuming."""
    atomic_write(path, text.encode("utf-8"))


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metric rows after ``step`` (and a line cut short by a kill) before a resumed run appends.

    The steps after the last checkpoint are trained again, so without this a killed
    and resumed run would log them twice.
    """
    import json

    def row_step(line: str) -> Optional[int]:
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            return None

    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if (n := row_step(line)) is not None and n <= step]
    if len(kept) < len(lines):
        _write_text_atomic(path, "".join(f"{line}\n" for line in kept))


def _gains_inputs(before: torch.Size, after: torch.Size) -> bool:
    """Whether a convolution's or linear layer's weight shaped ``after`` is one shaped ``before`` with more
    input channels (dim 1) only."""
    return (len(before) == len(after) >= 2 and after[1] > before[1]
            and before[0] == after[0] and before[2:] == after[2:])


class Trainer:
    def __init__(self, cfg):
        from wavegen.config import to_container
        from wavegen.tasks import build_task

        self.cfg = cfg
        tc = cfg.train
        self.info = D.init_distributed(tc.device)
        self.governor = None
        if tc.get("threads", 0):
            torch.set_num_threads(int(tc.threads))
        elif self.info.device.type == "cpu" and self.info.enabled:
            # The usable cores, split between this node's ranks (torchrun's OMP_NUM_THREADS=1 is not a user's choice).
            torch.set_num_threads(D.cpu_threads_per_rank(self.info))  # torchrun's default is 1 thread
        elif self.info.device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
            from wavegen.threads import ThreadGovernor

            # 1 thread or the cores other processes leave idle, whichever trains faster (wavegen.threads).
            self.governor = ThreadGovernor()
        if tc.get("deterministic", False):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses determinism without it
            torch.use_deterministic_algorithms(True)
        self.cfg_container = to_container(cfg)
        _check_sample_rate(self.cfg_container.get("audio") or {})
        _check_train_counts(self.cfg_container.get("train") or {})
        _check_time_limit(self.cfg_container.get("train") or {})
        # Same seed on every rank so the initial weights agree (DDP also broadcasts them).
        seed_everything(int(cfg.seed))
        self.task = build_task(cfg)
        self.model = self.task.model.to(self.info.device)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=float(tc.lr), betas=tuple(tc.betas), weight_decay=float(tc.weight_decay),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(int(tc.warmup_steps), int(tc.steps), float(tc.min_lr_ratio))
        )
        self.ema = EMA(self.model, float(tc.ema_decay))
        self.run_dir = Path(str(tc.run_dir)).expanduser()
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.step = 0
        self.nonfinite_total = 0
        self.extra: dict = {}
        self._saved_step: Optional[int] = None  # the step of the newest checkpoint on disk
        # Every rank checks (reads only), so a refusal stops all of them with the same message.
        _check_run_dir(self.run_dir, self.cfg_container)
        self._rng_restored = False
        self._resume()
        steps = D.gather_objects(self.info, self.step)
        if len(set(steps)) > 1:  # e.g. nodes that each see their own copy of the run directory
            raise WavegenError(f"the ranks resumed from different steps {steps}: train.run_dir must be one "
                               "folder that every node reads and writes (a shared file system)")
        # Per-rank streams of randomness (noise levels, dropout) after the shared init.
        if not self._rng_restored:
            seed_everything(int(cfg.seed) * 1000 + self.info.rank + 1)
        self.sampler = self._build_sampler("train", self.info.rank, self.info.world_size)
        # Built now (cheap: no decoding) so a missing validation split fails before training, on every rank.
        self._val_sampler = self._build_sampler("validation", 0, 1)
        # The first batch now, before anything is written: an unreadable file it draws fails here.
        # Kept for the first training step (batches are a pure function of the step).
        first_batch = _to_device(self.sampler.batch(self.step), self.info.device)
        self._drawn: Optional[tuple[int, dict]] = (self.step, first_batch)
        unused = []
        if self.info.enabled:
            with self._autocast():
                unused = D.parameters_without_gradient(self.model, lambda m: self.task.loss(m, first_batch)[0])
        self.ddp_model = D.wrap_model(self.model, self.info, unused)
        self._val_batches: Optional[list] = None

    def _batch(self, step: int) -> dict:
        """The training batch of ``step`` on this rank's device (the one drawn at start-up is reused)."""
        drawn, self._drawn = self._drawn, None
        if drawn is not None and drawn[0] == step:
            return drawn[1]
        return _to_device(self.sampler.batch(step), self.info.device)

    # ------------------------------------------------------------------ checkpoints

    def _warm_start(self, path: Path) -> None:
        """Start from another run's weights (its EMA ones if it has them; a shipped model's file works too).

        Every weight the checkpoint holds must exist in this model with the same shape; parameters it
        lacks (a conditioning path added for a fine-tune, say) keep their initialisation. A weight that
        only gained input channels (dim 1: conditioning channels added to a stream) keeps its own on the
        first ones and reads the new ones with zeros, so the model starts out computing what its parent
        did. The EMA starts
        from the loaded weights; optimiser, schedule and step start fresh: this is a new run, not a resume.
        """
        state = load_checkpoint(path, family=self.task.family, audio=self.cfg_container.get("audio"))
        weights = state.get("ema") or state["model"]
        own = self.model.state_dict()
        foreign = sorted(k for k in weights if k not in own)
        layers = dict(self.model.named_modules())
        widened = {k for k in weights if k in own and k.endswith(".weight")
                   and isinstance(layers.get(k[: -len(".weight")]), (torch.nn.Conv1d, torch.nn.Linear))
                   and _gains_inputs(weights[k].shape, own[k].shape)}
        reshaped = sorted(k for k in weights if k in own and own[k].shape != weights[k].shape and k not in widened)
        if foreign or reshaped:
            names = ", ".join((foreign + reshaped)[:4])
            raise WavegenError(f"train.init_from={path} does not fit this model: {names} "
                               f"{'are' if len(foreign + reshaped) > 1 else 'is'} not in it or shaped otherwise")
        missing = sorted(k for k in own if k not in weights)
        loaded = {}
        for key, value in weights.items():
            if key in widened:
                value = torch.cat([value, value.new_zeros(value.shape[0], own[key].shape[1] - value.shape[1],
                                                          *value.shape[2:])], dim=1)
            loaded[key] = value.to(own[key].dtype)
        self.model.load_state_dict(loaded, strict=False)
        self.ema.load_state_dict(self.model.state_dict())
        if self.info.is_main:
            kept = f"; newly initialised: {', '.join(missing)}" if missing else ""
            kept += f"; new input channels, read at zero: {', '.join(sorted(widened))}" if widened else ""
            print(f"starting from the weights of {path} (step {int(state.get('step', 0))}){kept}", flush=True)

    def _resume(self) -> None:
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:  # a fresh run; train.init_from only starts one (a resume restores its own weights)
            if self.cfg.train.get("init_from"):
                self._warm_start(Path(str(self.cfg.train.init_from)).expanduser())
            return
        state = load_checkpoint(path, family=self.task.family, audio=self.cfg_container.get("audio"))
        if state.get("model_config") != self.task.model_config():
            raise WavegenError(f"{path} holds a model with another config; pick another train.run_dir")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self._saved_step = self.step
        self.nonfinite_total = int(state.get("extra", {}).get("nonfinite_total", 0))
        self.extra = dict(state.get("extra", {}))
        rng = state.get("rng", {})
        per_rank = rng.get("ranks")
        if per_rank and self.info.rank < len(per_rank):
            set_rng_state(per_rank[self.info.rank])
            self._rng_restored = True
        if per_rank and len(per_rank) != self.info.world_size and self.info.is_main:
            print(f"warning: {path} was written by {len(per_rank)} process(es), this run has "
                  f"{self.info.world_size}; training continues but not bit-exactly", flush=True)
        if self.info.is_main:
            print(f"resuming from {path} (step {self.step})", flush=True)

    def _gather_rng(self) -> list:
        mine = rng_state()
        if not self.info.enabled:
            return [mine]
        gathered = [None] * self.info.world_size
        torch.distributed.all_gather_object(gathered, mine)
        return gathered

    def save(self) -> None:
        ranks = self._gather_rng()
        if self.info.is_main:
            extra = {**self.extra, "nonfinite_total": self.nonfinite_total}
            state = {
                "family": self.task.family,
                "model_config": self.task.model_config(),
                "audio": self.cfg_container.get("audio"),
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"ranks": ranks},
                "extra": extra,
                "config": self.cfg_container,
            }
            save_checkpoint(self.ckpt_dir, state, self.step, keep=int(self.cfg.train.keep_checkpoints))
        self._saved_step = self.step
        D.barrier(self.info)

    def _lock_run_dir(self):
        """Rank 0 takes the run directory's lock; a refusal is raised on every rank (none may hang)."""
        from wavegen.locking import FolderLock

        lock, refusal = None, None
        if self.info.is_main:
            try:
                lock = FolderLock(self.run_dir, "train.run_dir").acquire()
            except WavegenError as exc:
                refusal = str(exc)
        refusals = [r for r in D.gather_objects(self.info, refusal) if r]
        if refusals:
            if lock is not None:
                lock.release()
            raise WavegenError(refusals[0])
        return lock

    def _stop_if_asked(self, stop: StopRequests) -> None:
        """Between steps: if any rank got SIGINT/SIGTERM, save this step (unless saved) and stop every rank."""
        if not D.any_rank(self.info, stop.requested):  # one tiny all-reduce per step under DDP
            return
        if self._saved_step != self.step:
            self.save()
        raise Interrupted(stop.signum or signal.SIGTERM, self.step, self.ckpt_dir / f"step_{self.step:08d}.pt")

    # ------------------------------------------------------------------ evaluation

    def _build_sampler(self, split: str, rank: int, world_size: int):
        """The task's own sampler if it has one (e.g. priors read code sets), else audio segments."""
        if hasattr(self.task, "build_sampler"):
            return self.task.build_sampler(self.cfg, split, rank, world_size)
        from wavegen.data import build_sampler

        return build_sampler(self.cfg, split, rank, world_size)

    def val_batches(self) -> list:
        if self._val_batches is None:
            batches = self._val_sampler.validation_batches(int(self.cfg.train.val_batches))
            self._val_batches = [_to_device(b, self.info.device) for b in batches]
        return self._val_batches

    @torch.no_grad()
    def validate(self) -> dict:
        metrics = self.task.validate(self.ema.model, self.val_batches())
        return {f"val/{k}" if not k.startswith("val") else k: float(v) for k, v in metrics.items()}

    # ------------------------------------------------------------------ the loop

    def _autocast(self):
        dtype = autocast_dtype(self.task, self.cfg.train.get("amp", "auto"), self.info.device.type)
        return torch.autocast(device_type=self.info.device.type, dtype=dtype or torch.bfloat16,
                              enabled=dtype is not None)

    def train_step(self, batch: dict) -> Optional[dict]:
        """One optimiser step; returns metrics, or None when a non-finite loss was skipped."""
        self.ddp_model.train()
        with self._autocast():
            loss, metrics = self.task.loss(self.ddp_model, batch)
        finite = bool(torch.isfinite(loss.detach()).item())
        if self.info.enabled:  # every rank must agree before the collective backward
            flag = torch.tensor([0.0 if finite else 1.0], device=loss.device)
            torch.distributed.all_reduce(flag)
            finite = flag.item() == 0
        self.optimizer.zero_grad(set_to_none=True)
        if not finite:
            return None
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.cfg.train.grad_clip))
        if not torch.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update(self.model, self.step)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.scheduler.get_last_lr()[0],
                **{k: float(v) for k, v in metrics.items()}}

    def run(self) -> dict:
        """Train to ``train.steps`` (or ``stop_at_step``); raises :class:`Interrupted` on SIGINT/SIGTERM."""
        lock = self._lock_run_dir()
        try:
            with StopRequests() as stop:
                return self._run(stop)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, stop: StopRequests) -> dict:
        from wavegen.train.loggers import build_logger

        tc = self.cfg.train
        total = int(tc.steps)
        # stop_at_step ends this invocation early (e.g. a time-boxed job); the schedule still
        # follows train.steps, so running the command again continues the same run.
        stop_at = min(total, int(tc.stop_at_step)) if tc.get("stop_at_step") else total
        logger = None
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            import yaml

            _write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg_container, sort_keys=False))
            _trim_metrics(self.run_dir / "metrics.jsonl", self.step)
            logger = build_logger(self.cfg.logger, self.run_dir, self.cfg_container, str(self.cfg.name))
        progress = None
        if self.info.is_main and tc.get("progress", True):
            from tqdm import tqdm

            progress = tqdm(total=total, initial=self.step, desc=f"train {self.cfg.name}", dynamic_ncols=True)
        samples_per_step = int(tc.batch_size) * int(tc.segment_length) * self.info.world_size
        consecutive_bad = 0
        last: dict = {}
        tick = time.perf_counter()
        # max_minutes ends this invocation after that much time (validated and checkpointed, like
        # stop_at_step); minutes_clock "cpu" counts this process's CPU time, fair on a shared machine.
        max_minutes = float(tc.get("max_minutes") or 0)
        clock = time.process_time if tc.get("minutes_clock", "wall") == "cpu" else time.perf_counter
        started = clock()
        timed_out = False

        def out_of_time() -> bool:
            if not max_minutes:
                return False
            over = (clock() - started) / 60.0 >= max_minutes
            if self.info.enabled:  # every rank stops at the same step
                flag = torch.tensor([1.0 if over else 0.0], device=self.info.device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                over = flag.item() > 0
            return over

        def save_if_due() -> None:
            if self.step % int(tc.checkpoint_every) == 0 or self.step in (total, stop_at) or timed_out:
                self.save()

        try:
            while self.step < stop_at:
                self._stop_if_asked(stop)
                step_started = time.perf_counter()
                batch = self._batch(self.step)
                metrics = self.train_step(batch)
                if self.governor is not None:
                    self.governor.step_done(time.perf_counter() - step_started)
                self.step += 1
                timed_out = out_of_time()
                if metrics is None:
                    consecutive_bad += 1
                    self.nonfinite_total += 1
                    if self.info.is_main:
                        print(f"warning: non-finite loss at step {self.step}, batch skipped "
                              f"({consecutive_bad} in a row, {self.nonfinite_total} in all)", flush=True)
                    if consecutive_bad >= int(tc.max_nonfinite):
                        raise WavegenError(
                            f"training stopped: {consecutive_bad} non-finite losses in a row at step {self.step} "
                            f"(train.max_nonfinite={tc.max_nonfinite}); lower train.lr or check the data"
                        )
                    save_if_due()  # a skipped batch still counts as a step: never end a run without its checkpoint
                    if timed_out:
                        break
                    continue
                consecutive_bad = 0
                last = metrics
                if progress is not None:
                    now = time.perf_counter()
                    rate = samples_per_step / max(now - tick, 1e-9)
                    tick = now
                    progress.set_postfix(loss=f"{metrics['loss']:.4f}", samples_s=f"{rate:,.0f}")
                    progress.update(1)
                if self.step % int(tc.log_every) == 0 or self.step == total:
                    scalars = D.all_reduce_mean(self.info, metrics)
                    if logger is not None:
                        logger.log_scalars(self.step, {**scalars, "nonfinite_total": self.nonfinite_total})
                if self.step % int(tc.val_every) == 0 or self.step == total or timed_out:
                    if self.info.is_main:
                        val = self.validate()
                        if max_minutes:
                            val["train_minutes"] = (clock() - started) / 60.0
                        last.update(val)
                        logger.log_scalars(self.step, val)
                        if logger.wants_media and (self.step % int(tc.media_every) == 0 or self.step == total):
                            media = self.task.media(self.ema.model, self.val_batches()[0])
                            logger.log_media(self.step, media, int(self.cfg.audio.sample_rate))
                    D.barrier(self.info)
                save_if_due()
                if timed_out:
                    break
        finally:
            if progress is not None:
                progress.close()
            if logger is not None:
                logger.close()
        return {"step": self.step, "nonfinite_total": self.nonfinite_total, **last}


def train(cfg) -> dict:
    """Train the model the config describes; returns the last metrics."""
    trainer = Trainer(cfg)
    try:
        result = trainer.run()
        D.maybe_print_param_hash(trainer.info, trainer.model, trainer.step)
        return result
    finally:
        D.cleanup(trainer.info)
