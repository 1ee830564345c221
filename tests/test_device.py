"""What a run says it trains on, and a GPU the installed backend cannot use."""

from pathlib import Path

from kagglesalt import cv
from kagglesalt.model.backend import Device, device
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


def test_the_device_is_described_in_words():
    assert Device("CPU", "AMD EPYC", 2, "tensorflow", "3.15.1").describe() == \
        "CPU AMD EPYC (2 cores), Keras 3.15.1 on tensorflow"
    assert Device("GPU", "NVIDIA H200", 2, "jax", "3.15.1",
                  auto_precision="mixed_bfloat16").describe() == \
        "GPU NVIDIA H200 (x2), Keras 3.15.1 on jax, precision auto: mixed_bfloat16"
    assert Device("GPU", "Tesla T4", 2, "tensorflow", "3.15.1",
                  auto_precision="mixed_float16").describe().endswith(
        "precision auto: mixed_float16")
    here = device()
    assert here.kind in ("CPU", "GPU") and here.count >= 1


def test_a_gpu_the_backend_cannot_use_is_said_once_with_the_fix(synthetic_data, tmp_path,
                                                                 monkeypatch):
    unused = Device("CPU", "AMD EPYC", 2, "tensorflow", "3.15.1", unused_gpu="NVIDIA H100")
    assert Device("CPU", "AMD EPYC", 2, "tensorflow", "3.15.1").warning() is None
    monkeypatch.setattr(cv, "device", lambda: unused)

    class Messages(Reporter):
        def __init__(self):
            self.lines = []

        def message(self, text):
            self.lines.append(text)

    said = Messages()
    ws = Workspace(synthetic_data, tmp_path / "runs", tmp_path / "subs")
    cv.run_cv(ws, cv.CVOptions("tiny", 2, None, EXAMPLES, {"epochs": 1}), said)
    warnings = [line for line in said.lines if "NVIDIA H100" in line]
    assert len(warnings) == 1
    assert "cannot use" in warnings[0] and "KERAS_BACKEND=jax" in warnings[0]


def test_a_keras_backend_that_does_not_exist_is_one_line_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "kagglesalt", "--data-dir", str(tmp_path), "cv"],
        capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "fooo"})
    assert result.returncode == 1
    assert "KERAS_BACKEND=fooo is not a Keras backend" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_backend_whose_package_is_missing_names_the_install_command(monkeypatch):
    import importlib.util

    import pytest

    from kagglesalt.errors import KaggleSaltError
    from kagglesalt.model import backend

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(KaggleSaltError, match=r"KERAS_BACKEND=jax but jax is not installed: "
                                              r"pip install 'kagglesalt\[jax\]'"):
        backend._check_backend_installed()


QUIET = """
import os, sys
from kagglesalt.model.backend import quiet_native_stderr
try:
    with quiet_native_stderr():
        os.write(2, b"I0000 a start-up line\\n")
        raise {error}
except BaseException:
    pass
"""


def test_ctrl_c_during_a_quiet_import_shows_nothing_of_it_but_a_failure_does():
    import subprocess
    import sys

    def stderr(error):
        return subprocess.run([sys.executable, "-c", QUIET.format(error=error)],
                              capture_output=True, text=True).stderr

    assert "a start-up line" not in stderr("KeyboardInterrupt")
    assert "a start-up line" in stderr("RuntimeError('import failed')")
