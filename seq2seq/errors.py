"""The one exception type that reaches users as a one-line message (no traceback)."""


class UserError(Exception):
    """A problem with the user's input: a recipe, a data file, a model directory, a flag.

    The message names the file, line or recipe key and says what to do; the command-line
    entry points print it on one line and exit with status 2.
    """
