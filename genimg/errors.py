"""The one error type for mistakes a user can fix.

CLI prints ``error: <message>`` and exits 2; the UI raises ``gr.Error`` with the same
words. Anything else escaping a task function is a bug (or a fault of the model) and is
reported as such.
"""


class GenimgError(Exception):
    """A user-fixable problem: bad input, unknown model, missing weights.

    The message says what was wrong and what to do, in one line.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
        self.message = self.args[0]

    def __str__(self) -> str:
        return self.message


class ModelUnavailableError(GenimgError):
    """A model that cannot be loaded here (weights missing, unreadable or corrupt)."""
