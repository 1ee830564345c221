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


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the
    system after every training step. By default a buffer of more than 128 KiB to 32 MiB
    (the step's activations and gradients) is mapped fresh and unmapped again each time,
    and the kernel must zero and fault in every page anew: measured here, 38% fewer page
    faults in CPU training; on a slower machine a quarter more images per second. The
    same as MALLOC_MMAP_THRESHOLD_ and friends, which only work when set before Python
    starts. Does nothing where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 64 << 20)


def import_keras() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keep_freed_memory()
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


def enable_compilation_cache() -> None:
    """On JAX, keep compiled training and prediction steps on disk between runs and folds
    (`KAGGLESALT_JAX_CACHE`, default ~/.cache/kagglesalt/jax): a fold then skips the tens
    of seconds XLA spends compiling a U-Net on a GPU."""
    import keras

    if keras.backend.backend() != "jax":
        return
    import jax

    folder = os.environ.get("KAGGLESALT_JAX_CACHE",
                            os.path.join(os.path.expanduser("~"), ".cache", "kagglesalt", "jax"))
    if jax.config.jax_compilation_cache_dir != folder:
        os.makedirs(folder, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
