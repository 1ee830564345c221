"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class KaggleSaltError(Exception):
    """A problem the user can fix: the message names the thing and what to do."""
