"""What the library tells its user: the one exception type, and messages that name options.

The library is called from Python and from the command line, whose words for the same
option differ (`folds=1` against `--folds 1`). A message names an option with `option()`;
`str()` of the message reads in Python's words, and the command line renders its
`template` with the flags of the command that ran (`render(template, flag)`)."""

from __future__ import annotations

import re
from collections.abc import Callable

_NOTHING = object()
_START, _VALUE, _END = "\x1e", "\x1d", "\x1f"  # control characters no message contains
_OPTION = re.compile(f"{_START}(\\w+)(?:{_VALUE}(.*?))?{_END}", re.DOTALL)

# How the command line writes option `name` (with `value`, or None): e.g. "--folds 1".
FlagWriter = Callable[[str, "str | None"], str]


def option(name: str, value: object = _NOTHING) -> str:
    """Option `name` (the library's keyword), with the value the message is about if any."""
    if value is _NOTHING:
        return f"{_START}{name}{_END}"
    return f"{_START}{name}{_VALUE}{value}{_END}"


def render(template: str, flag: FlagWriter | None = None) -> str:
    """`template` with its options as keywords (`folds=1`, or `name` alone), or written by
    `flag` (the command line's `--folds 1`)."""

    def one(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if flag is not None:
            return flag(name, value)
        return name if value is None else f"{name}={value}"

    return _OPTION.sub(one, template)


class Message(str):
    """Text for the user that may name options: reads in Python's words; `template` keeps
    them for the command line."""

    template: str

    def __new__(cls, template: str) -> Message:
        text = super().__new__(cls, render(template))
        text.template = template
        return text


def template_of(text: str) -> str:
    """The template of a `Message`, or the text itself."""
    return getattr(text, "template", text)


class KaggleSaltError(Exception):
    """A problem the user can fix: the message names the thing and what to do, and names
    options with `option()`."""

    def __init__(self, message: str):
        self.template = template_of(message)
        super().__init__(render(self.template))


class Interrupted(KaggleSaltError):
    """Ctrl-C, with advice of its own (what keeps running, how to go on): exit status 130."""
