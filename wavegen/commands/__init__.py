"""One module per ``wavegen`` sub-command; each exposes ``register(subparsers)``.

A command module adds its parser in ``register`` and sets ``func`` to a callable
``func(args) -> int``. :mod:`wavegen.cli` lists the modules in ``COMMAND_MODULES``.
"""

from wavegen.errors import WavegenError


def check_backend(backend: str) -> None:
    """Refuse an unknown ``--backend`` before a command loads models or opens outputs.

    The kernels check it too, but only when generation reaches them, after the first
    outputs have been created.
    """
    from wavegen.kernels.dispatch import BACKENDS

    if backend not in BACKENDS:
        raise WavegenError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, a container's cpuset), at least 1."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def add_threads_option(p, sequential: bool = False) -> None:
    """``--threads N`` for an inference command. One policy: commands whose work is large parallel
    ops (vocode, encode) use every usable core; autoregressive sampling (sample, decode, and generate,
    which measured it) defaults to 1, since batch-1 steps are small ops that extra threads only slow
    down with synchronisation."""
    default = 1 if sequential else 0
    what = "1: sampling is a chain of small ops" if sequential else "0: every core this process may use"
    p.add_argument("--threads", type=int, default=default,
                   help=f"CPU threads for torch (default {what}; 0 = every usable core)")


def apply_threads(threads: int) -> int:
    """Set torch's CPU threads: ``threads``, or with 0 every usable core (unless OMP_NUM_THREADS is set,
    which torch follows already). Torch's own default counts
    the machine's cores, which oversubscribes a process confined to fewer (a container, taskset)."""
    import torch

    import os

    if threads < 0:
        raise WavegenError(f"--threads must be 0 (every usable core) or more, got {threads}")
    if not threads and os.environ.get("OMP_NUM_THREADS"):  # the user's explicit choice, which torch already follows
        return torch.get_num_threads()
    n = threads or usable_cores()
    torch.set_num_threads(n)
    return n
