"""One module per ``wavegen`` sub-command; each exposes ``register(subparsers)``.

A command module adds its parser in ``register`` and sets ``func`` to a callable
``func(args) -> int``. :mod:`wavegen.cli` lists the modules in ``COMMAND_MODULES``.
"""
