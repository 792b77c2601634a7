"""One module per ``wavegen`` sub-command; each exposes ``register(subparsers)``.

A command module adds its parser in ``register`` and sets ``func`` to a callable
``func(args) -> int``. :mod:`wavegen.cli` lists the modules in ``COMMAND_MODULES``.
"""

from wavegen.errors import WavegenError
from wavegen.threads import usable_cores  # noqa: F401  (re-exported: commands import it from here)


def check_backend(backend: str) -> None:
    """Refuse an unknown ``--backend`` before a command loads models or opens outputs.

    The kernels check it too, but only when generation reaches them, after the first
    outputs have been created.
    """
    from wavegen.kernels.dispatch import BACKENDS

    if backend not in BACKENDS:
        raise WavegenError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def add_threads_option(p, sequential: bool = False) -> None:
    """``--threads N`` for an inference command. One policy: commands whose work is large parallel
    ops (vocode, encode) use the usable cores other processes leave idle (:mod:`wavegen.threads`); autoregressive sampling (sample, decode, and generate,
    which measured it) defaults to 1, since batch-1 steps are small ops that extra threads only slow
    down with synchronisation."""
    default = 1 if sequential else 0
    what = "1: sampling is a chain of small ops" if sequential else "0"
    p.add_argument("--threads", type=int, default=default,
                   help=f"CPU threads for torch (default {what}; 0 = the usable cores other processes leave idle)")


def apply_threads(threads: int) -> int:
    """Set torch's CPU threads by wavegen's one policy (:mod:`wavegen.threads`): ``threads`` if
    positive, else OMP_NUM_THREADS if set, else the usable cores other processes leave idle."""
    import torch

    from wavegen.threads import choose_threads

    if threads < 0:
        raise WavegenError(f"--threads must be 0 (every idle usable core) or more, got {threads}")
    n = choose_threads(threads)
    torch.set_num_threads(n)
    return n
