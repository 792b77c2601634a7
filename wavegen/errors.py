"""The one exception type users see.

Anything that is the user's fault (a bad file, a bad config, a wrong checkpoint)
raises :class:`WavegenError` with a message that fits on one line. The CLI prints
``error: <message>`` and exits non-zero without a traceback.
"""


class WavegenError(Exception):
    """A user-facing error whose message is a single, self-explaining line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
