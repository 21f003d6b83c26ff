"""The one exception type for bad user input: the CLI prints its message on one line, exit code 2."""


class UserError(ValueError):
    """Bad input that the user can fix; the message names the problem and the fix."""


def one_line(err: BaseException) -> str:
    """An exception's message on one line. A DataLoader worker re-raises with the worker's
    traceback before the original ``module.Type: message`` line: that line's message is kept."""
    lines = str(err).strip().splitlines() or [""]
    if not lines[0].startswith("Caught "):
        return lines[0]
    name, _, message = lines[-1].partition(": ")
    return message if name.endswith("UserError") else lines[-1]
