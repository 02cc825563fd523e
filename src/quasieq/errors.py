"""The one exception type users see for bad input.

Every user mistake (a wrong shape, an unsupported layer, a box that does not match the net) raises
:class:`QuasieqError` with a one-line message that names the problem and says what to do next. The CLI
turns it into that line on stderr and exit code 2, without a traceback.
"""


class QuasieqError(ValueError):
    """Bad input: the message is one line, names the layer/shape/value at fault, and is shown as is."""


class TooManyRegions(QuasieqError):
    """More regions than the caller's limit exist (``regions(..., max_regions=N)``); ``at_least`` of
    them are certain."""

    def __init__(self, message: str, at_least: int) -> None:
        super().__init__(message)
        self.at_least = at_least
