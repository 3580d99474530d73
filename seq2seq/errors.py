"""The one exception type that reaches users as a one-line message (no traceback)."""


class UserError(Exception):
    """A problem with the user's input: a recipe, a data file, a model directory, a flag.

    The message names the file, line or recipe key and says what to do; the command-line
    entry points print it on one line and exit with status 2.
    """


def one_line(error: BaseException) -> str:
    """A UserError or OSError as the commands print it after 'error: ' (an OSError as
    'FILE: reason'); any other exception as 'TypeName: first line'."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, (UserError, OSError)):
        return " ".join(str(error).split("\n"))
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
