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
