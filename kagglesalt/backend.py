"""Importing Keras without TensorFlow's start-up chatter on the user's terminal.

TensorFlow writes C++ log lines to file descriptor 2 before any log level applies, so the
first import runs with that descriptor pointed at a temporary file; what it wrote is shown
only if the import fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from types import ModuleType


def import_keras() -> ModuleType:
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryFile(mode="w+b") as captured, _stderr_to(captured):
        try:
            import keras
        except BaseException:
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


@contextlib.contextmanager
def _stderr_to(target):
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (a notebook, a test)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    os.dup2(target.fileno(), fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
