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
from collections.abc import Iterator
from types import ModuleType


def import_keras() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_native_stderr():
        import keras
    # TensorFlow's Python logger warns about retracing on every new input shape.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2; show it only on failure."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (a notebook, a test)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), fd)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, fd)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
