"""What a run says it trains on, and a GPU the installed backend cannot use."""

from pathlib import Path

from kagglesalt import cv
from kagglesalt.backend import Device, device
from kagglesalt.progress import Reporter
from kagglesalt.workspace import Workspace

EXAMPLES = str(Path(__file__).parent / "plugin_examples")


def test_the_device_is_described_in_words():
    assert Device("CPU", "AMD EPYC", 2, "tensorflow", "3.15.1").describe() == \
        "CPU AMD EPYC (2 cores), Keras 3.15.1 on tensorflow"
    assert Device("GPU", "NVIDIA H200", 2, "jax", "3.15.1").describe() == \
        "GPU NVIDIA H200 (x2), Keras 3.15.1 on jax"
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
