"""The one exception type for mistakes a user can make (bad name, bad size, missing file)."""


class CnnarchError(Exception):
    """A problem the user can fix; the CLI prints its message alone and exits with status 2."""
