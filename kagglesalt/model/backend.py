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
from dataclasses import dataclass
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


def _check_backend_installed() -> None:
    import importlib.util

    from kagglesalt.errors import KaggleSaltError

    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    if name not in BACKEND_PACKAGES:
        raise KaggleSaltError(f"KERAS_BACKEND={name} is not a Keras backend: set it to "
                              f"{', '.join(BACKEND_PACKAGES)}, or unset it for TensorFlow")
    package, install = BACKEND_PACKAGES[name]
    if importlib.util.find_spec(package) is None:
        raise KaggleSaltError(f"KERAS_BACKEND={name} but {package} is not installed: "
                              f"{install}, or unset KERAS_BACKEND for TensorFlow")


def keras_backend() -> str:
    """The Keras backend in use: "tensorflow", "jax" or "torch"."""
    import keras

    return keras.backend.backend()


# The package each Keras backend needs, and how to install it.
BACKEND_PACKAGES = {"tensorflow": ("tensorflow", "pip install tensorflow-cpu (or tensorflow)"),
                    "jax": ("jax", "pip install 'kagglesalt[jax]' (on a GPU also "
                                   "'jax[cuda12]')"),
                    "torch": ("torch", "pip install torch")}


def import_keras() -> ModuleType:
    """Keras, imported quietly; a backend that is not installed (or not a backend) is one
    line naming the install command."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keep_freed_memory()
    if "keras" not in sys.modules:
        _check_backend_installed()
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
        except KeyboardInterrupt:  # the user stopped it: nothing of the import to show
            raise
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


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def backend_gpus(backend: str) -> list[str]:
    """Names of the GPUs Keras would train on with `backend` (an installed one), found
    without importing Keras: how a kernel chooses its backend before Keras is imported."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                    for d in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a backend without GPU support answers with errors of its own
        return []
    return []


def machine_gpus() -> list[str]:
    """NVIDIA GPUs this machine has, whatever the Keras backend can use."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                    timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        names = [line.split(":", 1)[1].split("(UUID")[0].strip()
                 for line in listed.splitlines() if line.startswith("GPU")]
        if names:
            return names
    import glob

    found = []
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        with contextlib.suppress(OSError), open(info) as lines:
            found += [line.split(":", 1)[1].strip() for line in lines
                      if line.startswith("Model:")]
    return found


def _backend_capabilities(backend: str) -> list[tuple[int, int]]:
    """The CUDA compute capability (major, minor) of each GPU the Keras backend trains on."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [tuple(tf.config.experimental.get_device_details(d)["compute_capability"])
                    for d in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            found = []
            for d in jax.devices():
                if d.platform == "gpu":
                    major, _, minor = str(d.compute_capability).partition(".")
                    found.append((int(major), int(minor or 0)))
            return found
        if backend == "torch":
            import torch

            return [tuple(torch.cuda.get_device_capability(i))
                    for i in range(torch.cuda.device_count())]
    except Exception:  # no GPU support, or a GPU that does not say: as if it had none
        return []
    return []


BFLOAT16_FROM = (8, 0)  # Ampere: the T4, V100, P100 and 1080 Ti before it have no bfloat16


def auto_precision(capabilities: list[tuple[int, int]]) -> str:
    """What precision "auto" means on GPUs of these compute capabilities: mixed bfloat16
    from 8.0 (about twice float32's speed there), mixed float16 below it (Keras scales the
    loss so small gradients survive), float32 on a CPU (no GPU), where 16-bit compute
    gains little and some kernels are slower."""
    if not capabilities:
        return "float32"
    return "mixed_bfloat16" if min(capabilities) >= BFLOAT16_FROM else "mixed_float16"


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy of a `precision` setting ("auto": `auto_precision` of the
    GPUs the backend trains on)."""
    if precision != "auto":
        return precision
    return auto_precision(_backend_capabilities(keras_backend()))


@dataclass(frozen=True)
class Device:
    """What Keras trains on here, said before every run and kept in its config.json."""

    kind: str  # "GPU" or "CPU"
    name: str
    count: int  # GPUs, or CPU cores
    backend: str
    keras: str
    unused_gpu: str | None = None  # a GPU this machine has that the backend cannot use
    auto_precision: str = "float32"  # what precision "auto" is on this device

    def describe(self) -> str:
        where = (f"GPU {self.name}" + (f" (x{self.count})" if self.count > 1 else "")
                 if self.kind == "GPU" else f"CPU {self.name} ({self.count} cores)")
        precision = f", precision auto: {self.auto_precision}" if self.kind == "GPU" else ""
        return f"{where}, Keras {self.keras} on {self.backend}{precision}"

    def warning(self) -> str | None:
        if not self.unused_gpu:
            return None
        return (f"This machine has a GPU ({self.unused_gpu}) that Keras's {self.backend} "
                "backend cannot use (the CPU build is installed), so training runs on the "
                "CPU: for the GPU, pip install 'kagglesalt[jax]' 'jax[cuda12]' and set "
                "KERAS_BACKEND=jax")


def device() -> Device:
    import keras

    backend = keras.backend.backend()
    gpus = backend_gpus(backend)
    if gpus:
        return Device("GPU", gpus[0], len(gpus), backend, keras.__version__,
                      auto_precision=auto_precision(_backend_capabilities(backend)))
    present = machine_gpus()
    return Device("CPU", _cpu_name(), os.cpu_count() or 1, backend, keras.__version__,
                  present[0] if present else None)
