"""The one exception type for bad user input: the CLI prints its message on one line, exit code 2."""


class UserError(ValueError):
    """Bad input that the user can fix; the message names the problem and the fix."""
