"""Folds on Ray (`cv --ray`): a local instance of this machine's CPUs, a tiny model."""

import contextlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from kagglesalt import cv, distributed  # noqa: E402
from kagglesalt.errors import KaggleSaltError  # noqa: E402
from kagglesalt.progress import Reporter  # noqa: E402
from kagglesalt.workspace import Workspace  # noqa: E402

pytestmark = pytest.mark.ray
EXAMPLES = Path(__file__).parent / "plugin_examples"
SETTINGS = {"epochs": 3, "seed": 4, "learning_rate": 1e-2}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    distributed.connect(distributed.LOCAL)
    yield
    distributed.shutdown()


def options(name, plugins_dir=EXAMPLES, ray_address=distributed.LOCAL, **settings):
    return cv.CVOptions("tiny", 3, name, str(plugins_dir), {**SETTINGS, **settings},
                        ray_address)


class Recorder(Reporter):
    def __init__(self, interrupt_at_fold_start=None):
        self.starts, self.epochs, self.ends = [], 0, []
        self.interrupt = interrupt_at_fold_start

    def fold_start(self, fold, folds, epochs, steps):
        self.starts.append(fold)
        if self.interrupt and len(self.starts) == self.interrupt:
            raise KeyboardInterrupt

    def epoch_end(self, epoch, row):
        self.epochs += 1

    def fold_end(self, fold, score):
        self.ends.append(fold)


def test_ray_gives_the_folds_scores_and_files_of_the_local_run(synthetic_master, tmp_path):
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    recorder = Recorder()
    on_ray = cv.run_cv(ws, options("on-ray"), recorder)
    local = cv.run_cv(ws, options("local", ray_address=None))
    assert sorted(recorder.ends) == [0, 1, 2] and recorder.epochs == 9
    files = sorted(str(p.relative_to(local.path)) for p in local.path.rglob("*"))
    assert sorted(str(p.relative_to(on_ray.path)) for p in on_ray.path.rglob("*")) == files
    assert on_ray.folds().equals(local.folds())
    # Same seed, same batches, same single-threaded CPU math: the same predictions.
    assert on_ray.fold_scores() == local.fold_scores()
    assert np.abs(on_ray.oof().astype(int) - local.oof().astype(int)).max() <= 1
    assert on_ray.oof().std() > 0  # the models learned something to compare
    assert json.loads((on_ray.path / "config.json").read_text())["settings"] == \
        local.config.settings


def test_a_worker_killed_mid_fold_is_retried_and_the_run_finishes(synthetic_master,
                                                                  tmp_path):
    marker = tmp_path / "died-once"
    folder = tmp_path / "plugins"
    folder.mkdir()
    source = (EXAMPLES / "tiny_model.py").read_text()
    (folder / "dying.py").write_text(source.replace(
        "def build(input_size=32, width=4):\n",
        textwrap.dedent(f"""\
            def build(input_size=32, width=4):
                import os
                from pathlib import Path
                import ray
                in_a_task = ray.get_runtime_context().get_task_id() is not None
                if in_a_task and not Path({str(marker)!r}).exists():
                    Path({str(marker)!r}).touch()
                    os._exit(1)  # a worker process dies mid-fold, once (not the driver,
                                 # which builds the model too, to time it)
            """)))
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    run = cv.run_cv(ws, options("retried", folder))
    assert marker.exists() and run.finished and run.folds_done() == 3


def test_an_interrupted_ray_run_resumes_without_retraining_finished_folds(synthetic_master,
                                                                          tmp_path):
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):  # at the start of the third fold
        cv.run_cv(ws, options("cut"), Recorder(interrupt_at_fold_start=3))
    run = cv.Run(tmp_path / "runs" / "cut")
    finished = run.folds_done()
    assert 1 <= finished < 3 and not run.finished
    before = {k: pd.read_csv(run.fold_dir(k) / "history.csv") for k in range(3)
              if run.fold_summary(k) is not None}
    recorder = Recorder()
    run = cv.run_cv(ws, options("cut"), recorder)
    assert run.finished and len(recorder.starts) == 3 - finished
    # A fold cut short goes on from its checkpoint, if it kept one: no epoch twice.
    assert recorder.epochs <= 3 * (3 - finished)
    for k in range(3):
        history = pd.read_csv(run.fold_dir(k) / "history.csv")
        assert list(history["epoch"]) == [1, 2, 3]
        if k in before:  # a finished fold is not trained again
            assert history.equals(before[k])


def test_a_workspace_plugin_only_the_driver_has_trains_on_the_workers(synthetic_master,
                                                                      tmp_path):
    folder = tmp_path / "driver-only"
    folder.mkdir()
    seen = tmp_path / "loaded-from.txt"
    source = (EXAMPLES / "tiny_model.py").read_text()
    (folder / "remote_tiny.py").write_text(source.replace(
        "def build(input_size=32, width=4):\n",
        "def build(input_size=32, width=4):\n"
        f"    open({str(seen)!r}, 'a').write(__file__ + '\\n')\n"))
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    run = cv.run_cv(ws, options("shipped", folder))
    assert run.finished
    built = seen.read_text().split()
    # Once on the driver, from its folder, to time it; three times on the workers, never
    # from the driver's folder: the source travelled with the tasks.
    on_workers = [path for path in built if not path.startswith(str(folder))]
    assert len(on_workers) == 3 and len(built) == 4


def test_a_fold_asking_for_more_than_the_cluster_has_is_one_line(synthetic_master,
                                                                 tmp_path):
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KaggleSaltError, match="one fold asks for 1 GPU"):
        cv.run_cv(ws, cv.CVOptions("tiny", 3, "greedy", str(EXAMPLES), SETTINGS,
                                   distributed.LOCAL, 1.0, 1.0))
    with pytest.raises(KaggleSaltError, match="asks for 64 CPU"):
        cv.run_cv(ws, cv.CVOptions("tiny", 3, "greedy", str(EXAMPLES), SETTINGS,
                                   distributed.LOCAL, 64.0))
    assert not (tmp_path / "runs").exists()


def test_a_cluster_that_cannot_be_reached_is_one_line_before_any_work(synthetic_master,
                                                                      tmp_path):
    from click.testing import CliRunner

    from kagglesalt.cli import cli

    result = CliRunner().invoke(cli, [
        "--data-dir", str(synthetic_master), "--runs-dir", str(tmp_path / "runs"), "cv",
        "--model", "tiny", "--plugins-dir", str(EXAMPLES), "--ray", "ray://127.0.0.1:9"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot reach a Ray cluster at ray://127.0.0.1:9" in result.output
    assert "ray start --head" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_run_started_here_is_finished_on_ray(synthetic_master, tmp_path):
    class StopAfterFirstFold(Recorder):
        def fold_start(self, fold, folds, epochs, steps):
            super().fold_start(fold, folds, epochs, steps)
            if len(self.starts) == 2:
                raise KeyboardInterrupt

    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options("moved", ray_address=None), StopAfterFirstFold())
    recorder = Recorder()
    run = cv.run_cv(ws, options("moved"), recorder)
    assert run.finished and sorted(recorder.starts) == [1, 2]


def test_folds_on_ray_keep_their_time_budget_on_the_workers_clock(synthetic_master, tmp_path):
    from kagglesalt.model import budget

    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    # A plan made from rates far too slow gives each fold the least; the workers time
    # their own epochs and grow them to the most a fold may have.
    slow = budget.Rates({"bce_dice": 0.01}, predict=1000.0, compile=0.1)
    opts = cv.CVOptions("tiny", 3, "budget-on-ray", str(EXAMPLES), {"seed": 4},
                        distributed.LOCAL, minutes=20, most_epochs=3)
    run = cv.run_cv(ws, opts, Recorder(), rates=slow)
    assert run.config.budget["epochs"] == 1
    assert [run.fold_summary(k).epochs_run for k in range(3)] == [3, 3, 3]


def test_workers_running_other_versions_are_refused_in_one_line(monkeypatch):
    import kagglesalt

    distributed.check_versions(ray)  # the local instance runs this kagglesalt: fine
    monkeypatch.setattr(kagglesalt, "__version__", "9.9.9")  # as if this machine were newer
    with pytest.raises(KaggleSaltError, match=r"runs kagglesalt .* this machine kagglesalt "
                                              r"9\.9\.9 .*install the same versions"):
        distributed.check_versions(ray)


class Said(Recorder):
    def __init__(self, interrupt_after_epochs=None):
        super().__init__()
        self.messages, self.stop = [], interrupt_after_epochs

    def message(self, text):
        self.messages.append(text)

    def epoch_end(self, epoch, row):
        super().epoch_end(epoch, row)
        if self.stop and self.epochs >= self.stop:
            raise KeyboardInterrupt


def test_a_fold_checkpointed_here_goes_on_from_its_checkpoint_on_ray(synthetic_master,
                                                                    tmp_path):
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    settings = {"epochs": 4, "loss": "bce+lovasz", "lovasz_share": 0.25}  # 3 + 1 epochs
    here = cv.CVOptions("tiny", 3, "moved", str(EXAMPLES), {**SETTINGS, **settings})
    with pytest.raises(KeyboardInterrupt):  # fold 1 cut short in its Lovász stage
        cv.run_cv(ws, here, Said(interrupt_after_epochs=4))
    assert (tmp_path / "runs" / "moved" / "fold_0" / "checkpoint.npz").exists()
    said = Said()
    run = cv.run_cv(ws, options("moved", **settings), said)
    assert "fold 1/3: going on after epoch 3" in said.messages, said.messages
    assert run.finished and said.epochs == 1 + 4 + 4  # fold 1's last epoch, then two folds
    assert list(pd.read_csv(run.fold_dir(0) / "history.csv")["epoch"]) == [1, 2, 3, 4]


def test_folds_on_ray_keep_checkpoints_in_the_run_folder_and_a_rerun_goes_on(
        synthetic_master, tmp_path):
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    settings = {"epochs": 20, "loss": "bce+lovasz", "lovasz_share": 0.5}  # 10 + 10 epochs
    folder = tmp_path / "runs" / "kept"

    class StopOnceKept(Said):
        """The driver is stopped once a fold's checkpoint (kept at its first stage's end)
        has reached the run folder, while that fold still trains its second stage."""

        def epoch_end(self, epoch, row):
            super().epoch_end(epoch, row)
            if any(folder.glob("fold_*/checkpoint.npz")):
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cv.run_cv(ws, options("kept", **settings), StopOnceKept())
    run = cv.Run(folder)
    kept = [k for k in range(3) if (run.fold_dir(k) / "checkpoint.npz").exists()]
    assert kept and not run.finished
    said = Said()
    run = cv.run_cv(ws, options("kept", **settings), said)
    for k in kept:
        assert any(m.startswith(f"fold {k + 1}/3: going on after epoch ") for m in
                   said.messages), said.messages
    assert run.finished
    for k in range(3):  # every epoch of every fold in its history once
        assert list(pd.read_csv(run.fold_dir(k) / "history.csv")["epoch"]) == \
            list(range(1, 21))
        assert not (run.fold_dir(k) / "checkpoint.npz").exists()


def test_a_fold_whose_worker_died_goes_on_from_its_latest_checkpoint(synthetic_master,
                                                                    tmp_path):
    import os
    import signal

    pids = tmp_path / "pids"
    pids.mkdir()
    folder = tmp_path / "plugins"
    folder.mkdir()
    source = (EXAMPLES / "tiny_model.py").read_text()
    (folder / "noted.py").write_text(source.replace(
        "def build(input_size=32, width=4):\n",
        textwrap.dedent(f"""\
            def build(input_size=32, width=4):
                import os
                from pathlib import Path
                import ray
                if ray.get_runtime_context().get_task_id() is not None:  # on a worker
                    Path({str(pids)!r}, str(os.getpid())).touch()
            """)))
    ws = Workspace(synthetic_master, tmp_path / "runs", tmp_path / "subs")
    settings = {"epochs": 20, "loss": "bce+lovasz", "lovasz_share": 0.5}  # 10 + 10 epochs
    run_dir = tmp_path / "runs" / "revived"

    class KillOnceKept(Said):
        killed = False

        def epoch_end(self, epoch, row):
            super().epoch_end(epoch, row)
            if not self.killed and any(run_dir.glob("fold_*/checkpoint.npz")):
                self.killed = True
                for pid in pids.iterdir():  # the workers die mid-fold, their folds kept
                    os.kill(int(pid.name), signal.SIGKILL)

    said = KillOnceKept()
    run = cv.run_cv(ws, options("revived", folder, **settings), said)
    assert said.killed and run.finished
    assert any("going on after epoch 10" in m for m in said.messages), said.messages
    for k in range(3):  # every epoch once in each fold's history
        assert list(pd.read_csv(run.fold_dir(k) / "history.csv")["epoch"]) == \
            list(range(1, 21))


def test_a_killed_driver_leaves_no_ray_process_behind(synthetic_master, tmp_path):
    """Ray's own agents outlive a SIGKILLed driver by a minute; the watch stops them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil  # with Ray, in its extra
    command = [sys.executable, "-m", "kagglesalt", "--data-dir", str(synthetic_master),
               "--runs-dir", str(tmp_path / "runs"), "cv", "--model", "tiny", "--folds", "3",
               "--epochs", "500", "--plugins-dir", str(EXAMPLES), "--ray"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own instance
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)

    def named(process) -> str:
        with contextlib.suppress(psutil.Error):
            return " ".join(process.cmdline())
        return ""

    ray_processes: list = []
    try:
        deadline = time.monotonic() + 120
        while not any("_fold_task" in named(p) for p in ray_processes):  # training began
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
            with contextlib.suppress(psutil.Error):
                ray_processes = psutil.Process(driver.pid).children(recursive=True)
        agents = [p for p in ray_processes if "Agent" in named(p)]
        assert agents, [named(p) for p in ray_processes]  # the ones Ray leaves behind
        time.sleep(1.5)  # the watch has seen them
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    _, alive = psutil.wait_procs(ray_processes, timeout=20)
    assert not alive, [named(p) for p in alive]


def test_a_temporary_folder_too_deep_for_rays_sockets_is_one_line(synthetic_master,
                                                                  tmp_path):
    import os
    import subprocess
    import sys

    deep = tmp_path / ("d" * 40)
    deep.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    result = subprocess.run(
        [sys.executable, "-m", "kagglesalt", "--data-dir", str(synthetic_master), "--runs-dir",
         str(tmp_path / "runs"), "cv", "--model", "tiny", "--folds", "2", "--epochs", "1",
         "--plugins-dir", str(EXAMPLES), "--ray"],
        capture_output=True, text=True, env={**env, "TMPDIR": str(deep)}, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "RAY_TMPDIR" in errors[0] and str(deep) in errors[0], \
        result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_kernel_with_two_gpus_trains_a_fold_on_each_at_once(server, synthetic_master,
                                                              with_data, monkeypatch):
    """Kaggle's T4 x2 as far as this machine can play it: the kernel's machine lists two
    GPUs and Ray counts two, so the kernel trains the folds on a local Ray instance, each
    given its own GPU (the training itself stays on the CPU here)."""
    from kagglesalt import kernels
    from kagglesalt.workspace import runs
    from tests.test_kernels import on_kaggle

    server.kernels.data_dir = synthetic_master
    server.kernels.gpus = ("Tesla T4", "Tesla T4")
    monkeypatch.setenv(kernels.POLL_ENV, "0.2")
    result = on_kaggle()
    assert result.exit_code == 0, result.output
    log = server.kernels.sessions[("alice/kagglesalt-gpu", 1)].log.read_text()
    assert "kagglesalt: 2 GPUs: a fold on each at once, on a local Ray instance" in log
    placed = sorted(line.rsplit(", ", 1)[-1] for line in log.splitlines()
                    if " trains on " in line)
    assert placed == ["GPU 0", "GPU 1"], log[-3000:]
    run = runs.open_run(with_data / "runs", "gpu")
    assert run.finished and run.folds_done() == 2
