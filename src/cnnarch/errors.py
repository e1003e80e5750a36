"""The exceptions for mistakes a user can make (bad name, bad size, missing file).

`CnnarchError` is the one type to catch: the CLI prints its message alone, on one line, and
exits with status 2. Where the mistake is an argument's value (a size, a dtype, a name, a
number out of range), the error is a `CnnarchValueError`, which is also a `ValueError`, so
that `except ValueError` around a call with a bad argument catches it as it would catch
PyTorch's own. Problems that are not one argument's value (a forward pass that fails, a file
that is missing or corrupt) stay plain `CnnarchError`s.

A `CnnarchError` raised because something else failed is chained to that cause (`raise
CnnarchError(...) from err`): its message says what went wrong in one line, and the traceback
of the cause (the user's own model, say) stays there for whoever asks for it.
"""


class CnnarchError(Exception):
    """A problem the user can fix; the CLI prints its message alone and exits with status 2."""


class CnnarchValueError(CnnarchError, ValueError):
    """A `CnnarchError` whose cause is an argument's value: also a `ValueError`."""


def describe(err: BaseException) -> str:
    """A foreign error in a few words, for a one-line message: its type and its first line
    (cut at the first sentence when long: PyTorch's messages go on with internals).

    Args:
        err: the exception being wrapped.
    """
    text = str(err).strip()
    if not text:
        return type(err).__name__
    first = text.splitlines()[0]
    if len(first) > 120 and ". " in first:
        first = first[: first.index(". ") + 1]
    return f"{type(err).__name__}: {first}"


def one_line(message: str) -> str:
    """`message` on one line: its lines joined by spaces.

    Args:
        message: an error's text.
    """
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
