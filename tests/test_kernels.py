"""`cv --on-kaggle`: the real `kaggle` client pushes, follows and fetches a kernel from the
local Kaggle-compatible server, which runs the pushed script in a subprocess with Kaggle's
folders mapped to temporary ones (tests/kaggle_server.py)."""

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from kagglesalt import kernels
from kagglesalt.workspace import runs
from tests.test_kaggle import kagglesalt, one_line_error

EXAMPLES = Path(__file__).parent / "plugin_examples"


@pytest.fixture
def kaggle(server, synthetic_master, monkeypatch):
    """The server's kernels service, with the synthetic competition as a kernel's input."""
    server.kernels.data_dir = synthetic_master
    monkeypatch.setenv(kernels.POLL_ENV, "0.2")
    return server


def on_kaggle(*more, name="gpu", plugins_dir=EXAMPLES):
    return kagglesalt("cv", "--model", "tiny", "--folds", "2", "--epochs", "2", "--name", name,
                      "--plugins-dir", str(plugins_dir), "--on-kaggle", *more)


def readme_commands() -> list[list[str]]:
    """The commands of the README's section "No GPU? Kaggle's", each after `kagglesalt`."""
    import shlex

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("### No GPU? Kaggle's", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [shlex.split(command)[1:] for line in block.strip().splitlines()
            for command in line.split("#", 1)[0].split("&&")]


def pushed_job(saved: dict) -> dict:
    """The job a pushed script carries (its `JOB = json.loads(...)` line)."""
    import ast

    for node in ast.walk(ast.parse(saved["text"])):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "JOB":
            return json.loads(ast.literal_eval(node.value.args[0]))
    raise AssertionError("the script carries no JOB")


def interrupt_once_pushed(record: Path) -> threading.Thread:
    """Ctrl-C, as the terminal sends it, once the pushed version is recorded."""

    def press():
        deadline = time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=press, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as in a terminal (a process a shell started in the
    background ignores it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_run_pushed_to_kaggle_comes_home_and_is_ensembled_and_submitted(kaggle, with_data,
                                                                          ctrl_c):
    record = with_data / "runs" / "gpu" / kernels.RECORD
    presser = interrupt_once_pushed(record)
    detached = on_kaggle()
    presser.join()
    assert detached.exit_code == 130, detached.output
    assert "Detached" in detached.text and "keeps running on Kaggle" in detached.text
    assert "cv --name gpu --on-kaggle" in detached.text
    assert "No run of tiny with these settings has trained on Tesla T4 (x2) yet" in \
        detached.text
    assert "Traceback" not in detached.output
    saved = kaggle.kernels.saved
    assert len(saved) == 1
    assert saved[0]["machineShape"] == "NvidiaTeslaT4" and saved[0]["isPrivate"] is True
    assert saved[0]["competitionDataSources"] == ["tgs-salt-identification-challenge"]
    assert saved[0]["slug"] == "alice/kagglesalt-gpu"
    listed = kagglesalt("runs").text
    assert "On Kaggle: gpu, kernel alice/kagglesalt-gpu version 1" in listed
    assert "kagglesalt cv --name gpu --on-kaggle` brings it home" in listed
    assert "0/2 on Kaggle" in listed
    # config.json is written here first, and the kernel carries exactly it.
    written = json.loads((with_data / "runs" / "gpu" / "config.json").read_text())
    assert pushed_job(saved[0])["config"] == written
    assert written["settings"]["epochs"] == 2 and written["model"] == "tiny"
    assert written["device"] == "Tesla T4 (x2) on Kaggle, not trained yet"
    one_line_error(kagglesalt("cv", "--model", "tiny", "--folds", "2", "--epochs", "2",
                              "--name", "gpu", "--plugins-dir", str(EXAMPLES)),
                   "run gpu trains on Kaggle", "cv --name gpu --on-kaggle")

    attached = on_kaggle()  # follows the version pushed, never a second push
    assert attached.exit_code == 0, attached.output
    assert len(kaggle.kernels.saved) == 1
    assert "Following kernel alice/kagglesalt-gpu version 1" in attached.text
    assert "complete" in attached.text
    run = runs.open_run(with_data / "runs", "gpu")
    assert run.finished and run.folds_done() == 2
    assert run.config.device.endswith("on Kaggle, kernel alice/kagglesalt-gpu version 1")
    assert run.config.created == written["created"]  # the run is the one written here
    assert run.config.model_source == written["model_source"]
    assert run.config.settings == written["settings"]
    assert run.config.data.train > 0 and run.config.data.fingerprint  # what the kernel read
    assert not (run.path / "manifest.json").exists()
    assert json.loads(record.read_text())["home"] is True

    from kagglesalt import plugins

    chosen = plugins.get_model("tiny", EXAMPLES).training_settings({"epochs": 2})
    said = kernels.estimate(with_data / "runs", "tiny", chosen, 2, "NvidiaTeslaT4")
    assert said is not None and "at the rates run gpu measured there" in said
    assert kernels.estimate(with_data / "runs", "tiny", chosen, 2, "NvidiaL4") is None

    again = on_kaggle()
    assert again.exit_code == 0 and "nothing to do" in again.text
    one_line_error(on_kaggle("--lr", "0.01"), "pushed to Kaggle with other settings",
                   "--name")
    listed = kagglesalt("runs").text
    assert "gpu" in listed and "On Kaggle" not in listed
    assert "on_kaggle" not in run.config.command  # the command given here, not the kernel's
    _, ensemble, submit = readme_commands()  # the README's next commands, as they are there
    ensembled = kagglesalt(*ensemble)
    assert ensembled.exit_code == 0, ensembled.output
    submitted = kagglesalt(*submit)
    assert submitted.exit_code == 0, submitted.output
    assert kaggle.submitted[0]["file"].startswith("gpu-")
    assert kaggle.submitted[0]["description"] == submit[-1]


def test_the_readmes_command_pushes_unet_deep_on_five_folds(kaggle, with_data, ctrl_c):
    """The README's first command as it is there: pushed, then detached (the training
    itself, hours of unet_deep on a CPU, is stopped with the test's server)."""
    cv, _, _ = readme_commands()
    record = with_data / "runs" / "unet_deep-k5-s42" / kernels.RECORD
    presser = interrupt_once_pushed(record)
    result = kagglesalt(*cv)
    presser.join()
    assert result.exit_code == 130, result.output
    job = pushed_job(kaggle.kernels.saved[0])
    assert job["options"]["model"] == "unet_deep" and job["options"]["folds"] == 5
    assert job["config"]["settings"]["snapshots"] == 2  # unet_deep's own recipe
    assert len(kaggle.kernels.saved[0]["text"].encode()) < kernels.SOURCE_LIMIT


def test_a_file_cut_short_in_the_output_never_marks_its_fold_finished(kaggle, with_data):
    kaggle.kernels.mount = "zips"  # the competition mounted as train.zip and test.zip
    kaggle.kernels.truncated = {"runs/gpu/fold_1/oof.npy"}
    cut = on_kaggle()
    one_line_error(cut, "came home incomplete", "rerun")
    assert "fold_1 did not come home whole" in cut.text
    run = runs.Run(with_data / "runs" / "gpu")
    assert run.fold_summary(0) is not None and run.fold_problem(0) is None
    assert run.fold_summary(1) is None and not run.finished

    kaggle.kernels.truncated = set()
    whole = on_kaggle()  # downloads the same version's output again
    assert whole.exit_code == 0, whole.output
    assert len(kaggle.kernels.saved) == 1 and runs.open_run(with_data / "runs", "gpu").finished


def test_a_kernel_that_fails_shows_its_log_and_brings_home_what_it_finished(kaggle, with_data,
                                                                             tmp_path):
    folder = tmp_path / "failing"
    folder.mkdir()
    source = (EXAMPLES / "tiny_model.py").read_text()
    (folder / "tiny_model.py").write_text(source.replace(
        "def build(input_size=32, width=4):\n",
        "def build(input_size=32, width=4):\n"
        "    import os, pathlib\n"
        "    root = pathlib.Path(os.environ.get('KAGGLESALT_KAGGLE_ROOT', '/nowhere'))\n"
        "    if list(root.glob('working/runs/*/fold_0/done.json')):\n"
        "        raise RuntimeError('out of GPU memory in fold 2')\n"))
    failed = on_kaggle(plugins_dir=folder)
    one_line_error(failed, "ended error", "The script exited with status 1", "1 fold(s)")
    assert "out of GPU memory in fold 2" in failed.text  # the log's last lines
    run = runs.Run(with_data / "runs" / "gpu")
    assert run.fold_problem(0) is None and run.fold_summary(1) is None


def test_a_session_cut_at_its_limit_goes_on_in_a_new_version_from_its_finished_folds(
        kaggle, with_data):
    kaggle.kernels.cut_at_fold = 2  # Kaggle stops the session as fold 2 starts
    cut = on_kaggle()
    one_line_error(cut, "ended error", "time limit", "1 fold(s) came home", "rerun")
    run = runs.Run(with_data / "runs" / "gpu")
    assert run.fold_problem(0) is None and run.fold_summary(1) is None
    first = (run.fold_dir(0) / "history.csv").read_text()

    kaggle.kernels.cut_at_fold = None
    resumed = on_kaggle()
    assert resumed.exit_code == 0, resumed.output
    assert "going on from version 1's finished folds" in resumed.text
    saved = kaggle.kernels.saved
    assert len(saved) == 2 and saved[1]["kernelDataSources"] == ["alice/kagglesalt-gpu"]
    second = kaggle.kernels.sessions[("alice/kagglesalt-gpu", 2)].log.read_text()
    assert "fold 1/2 already trained" in second and "fold 1/2: " not in second
    run = runs.open_run(with_data / "runs", "gpu")
    assert run.finished and run.config.device.endswith("version 2")
    assert (run.fold_dir(0) / "history.csv").read_text() == first  # not trained again


@pytest.mark.parametrize("arrange, words", [
    (lambda k, ws: k.status.update(ListDataFiles=403), ["accept the competition rules"]),
    (lambda k, ws: setattr(k.kernels, "gpu_quota_hours", (30.0, 30.0)),
     ["GPU quota", "used up"]),
    (lambda k, ws: (ws / "plugins" / "notes.py").write_text("#" * 1_100_000),
     ["over Kaggle's 1 MB", "notes.py"]),
])
def test_what_kaggle_would_refuse_is_refused_before_a_push(kaggle, workspace, arrange, words):
    plugins_dir = workspace / "plugins"
    shutil.copytree(EXAMPLES, plugins_dir)
    arrange(kaggle, workspace)
    one_line_error(on_kaggle(plugins_dir=plugins_dir), *words)
    assert kaggle.kernels.saved == []
    assert not (workspace / "runs" / "gpu").exists()  # nothing written, nothing left


def test_an_error_in_the_push_answer_is_one_line_and_nothing_is_followed(kaggle, workspace):
    kaggle.kernels.refusal = "Notebook title already in use"
    one_line_error(on_kaggle(), "Kaggle refused the kernel (Notebook title already in use)")
    assert kaggle.kernels.sessions == {}
    assert not (workspace / "runs" / "gpu").exists()  # its config.json went with the push
    assert "GetKernelSessionStatus" not in kaggle.rpc_calls()


def test_a_push_whose_answer_is_lost_says_it_may_run(kaggle, workspace, monkeypatch):
    monkeypatch.setenv("KAGGLESALT_NETWORK_TIMEOUT", "1")
    kaggle.fail_after["SaveKernel"] = 502  # recorded there, and the answer lost on the way
    one_line_error(on_kaggle(), "HTTP 502", "Kaggle may run it",
                   "https://www.kaggle.com/code/alice/kagglesalt-gpu")
    assert not (workspace / "runs" / "gpu").exists()  # a rerun pushes it again
    kaggle.kernels.wait()


def test_a_wrong_machine_a_budget_past_the_session_limit_or_no_credentials_are_one_line(
        kaggle, workspace, monkeypatch):
    one_line_error(on_kaggle("--kaggle-machine", "NvidiaA100"), "not a GPU machine",
                   "NvidiaTeslaT4")
    one_line_error(on_kaggle("--kaggle-machine", "NvidiaTeslaP100"), "retired")
    one_line_error(kagglesalt("cv", "--model", "tiny", "--folds", "2", "--minutes", "720",
                              "--plugins-dir", str(EXAMPLES), "--on-kaggle"),
                   "stops a session at 12 hours", "--minutes 705 or less")
    monkeypatch.setenv("HOME", str(workspace / "nobody"))
    one_line_error(on_kaggle(), "no Kaggle credentials")
    assert kaggle.requests == []


def test_a_run_trained_here_is_not_pushed_to_kaggle(kaggle, workspace):
    started = workspace / "runs" / "gpu"
    (started / "fold_0").mkdir(parents=True)
    (started / "config.json").write_text("{}")
    (started / "fold_0" / "checkpoint.npz").write_bytes(b"an epoch trained here")
    one_line_error(on_kaggle(), "run gpu was started here", "--name")
    assert kaggle.kernels.saved == [] and not (started / kernels.RECORD).exists()


def test_a_config_json_alone_is_pushed_anew(kaggle, workspace):
    """What a push killed before Kaggle answered leaves (or a local run stopped before its
    first fold): nothing trained, so the push goes ahead and writes it again."""
    started = workspace / "runs" / "gpu"
    started.mkdir(parents=True)
    (started / "config.json").write_text('{"an": "earlier try"}')
    kaggle.kernels.refusal = "stop here"  # the push was made: that is what is tested
    one_line_error(on_kaggle(), "Kaggle refused the kernel (stop here)")
    assert pushed_job(kaggle.kernels.saved[0])["config"]["name"] == "gpu"
    assert not started.exists()


def test_a_model_from_an_installed_package_is_refused_before_a_push(kaggle, workspace,
                                                                    installed_plugin):
    one_line_error(kagglesalt("cv", "--model", "tiny", "--folds", "2", "--on-kaggle"),
                   f"entry point ({installed_plugin})", "--plugins-dir")
    assert kaggle.kernels.saved == []


def test_the_kernel_trains_the_config_written_at_home_or_nothing():
    from kagglesalt import cv, on_kaggle, plugins

    spec = plugins.get_model("tiny", EXAMPLES)
    chosen = spec.training_settings({"epochs": 2})
    planned = kernels.planned_config(spec, chosen, "r", 2, "NvidiaTeslaT4", "c").to_json()
    asked = cv.CVOptions("tiny", 2, "r", str(EXAMPLES), {"epochs": 2})
    assert on_kaggle.check_config(asked, planned) is None
    other = cv.CVOptions("tiny", 2, "r", str(EXAMPLES), {"epochs": 2, "learning_rate": 0.5})
    assert "learning_rate" in (on_kaggle.check_config(other, planned) or "")
    more_folds = cv.CVOptions("tiny", 3, "r", str(EXAMPLES), {"epochs": 2})
    assert on_kaggle.check_config(more_folds, planned) == "folds"
    # With a budget the kernel chooses the epochs; the rest must still match.
    budget = cv.CVOptions("tiny", 2, "r", str(EXAMPLES), {}, minutes=5.0)
    planned_budget = kernels.planned_config(spec, spec.training_settings({}), "r", 2,
                                            "NvidiaTeslaT4", "c").to_json()
    assert on_kaggle.check_config(budget, planned_budget) is None


def test_a_kernel_given_another_config_trains_nothing_and_says_why(synthetic_master, tmp_path,
                                                                   capsys):
    from kagglesalt import on_kaggle, plugins

    root = tmp_path / "kaggle"
    shutil.copytree(synthetic_master, root / "input" / "tgs-salt-identification-challenge")
    (root / "working").mkdir()
    spec = plugins.get_model("tiny", EXAMPLES)
    planned = kernels.planned_config(spec, spec.training_settings({"epochs": 3}), "r", 2,
                                     "NvidiaTeslaT4", "c").to_json()
    job = {"run": "r", "competition": "tgs-salt-identification-challenge",
           "plugins": kernels.workspace_plugins(str(EXAMPLES)), "plugins_dir": str(EXAMPLES),
           "options": {"model": "tiny", "folds": 2, "name": "r", "settings": {"epochs": 2},
                       "minutes": None}, "config": planned}
    assert on_kaggle.run_job(job, root) == 1
    said = [line for line in capsys.readouterr().out.splitlines() if "Error:" in line]
    assert len(said) == 1 and "otherwise than the config.json" in said[0]
    assert "epochs (3 there, 2 here)" in said[0]
    assert not (root / "working" / "runs" / "r").exists()


def test_kaggle_options_need_on_kaggle():
    result = kagglesalt("cv", "--kaggle-machine", "NvidiaL4")
    assert result.exit_code == 2 and "add --on-kaggle" in result.text


def test_the_kernel_carries_this_kagglesalt_and_the_workspace_plugins():
    job = {"run": "r", "competition": "c", "plugins_dir": str(EXAMPLES),
           "plugins": kernels.workspace_plugins(str(EXAMPLES)), "options": {}}
    source = kernels.kernel_source(job)
    assert len(source.encode()) < kernels.SOURCE_LIMIT
    assert "--no-deps" in source and "kagglesalt.on_kaggle" in source
    compile(source, "kagglesalt_run.py", "exec")
    name, wheel = kernels.wheel()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        names = set(zf.namelist())
    assert {"kagglesalt/on_kaggle.py", "kagglesalt_plugins/unet_deep.py",
            f"kagglesalt-{name.split('-')[1]}.dist-info/RECORD"} <= names
    assert set(job["plugins"]) == {"tiny_model.py", "hello_command.py"}


def test_the_kernel_finds_the_competition_mounted_as_folders_or_as_zips(synthetic_master,
                                                                         tmp_path):
    import zipfile

    from kagglesalt import data, on_kaggle
    from tests.kaggle_server import competition_zip

    folders = tmp_path / "a" / "input" / "tgs-salt-identification-challenge"
    shutil.copytree(synthetic_master, folders)
    assert on_kaggle.find_competition(tmp_path / "a" / "input", "tgs-salt-identification-"
                                      "challenge", tmp_path / "s1") == folders
    zips = tmp_path / "b" / "input" / "competitions" / "tgs-salt-identification-challenge"
    zips.mkdir(parents=True)
    import io

    with zipfile.ZipFile(io.BytesIO(competition_zip(synthetic_master))) as zf:
        zf.extractall(zips)
    found = on_kaggle.find_competition(tmp_path / "b" / "input",
                                       "tgs-salt-identification-challenge", tmp_path / "s2")
    assert found == tmp_path / "s2" and data.layout_complete(found)
    assert len(data.load_train(found)) == len(data.load_train(synthetic_master))


def test_a_manifest_keeps_only_what_is_whole(tmp_path):
    from kagglesalt.workspace import manifest

    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    (run / "fold_1").mkdir()
    (run / "config.json").write_text("{}")
    for k in (0, 1):
        (run / f"fold_{k}" / "done.json").write_text("{}")
        (run / f"fold_{k}" / "oof.npy").write_bytes(b"x" * 100)
    (run / "fold_2").mkdir()
    (run / "fold_2" / "checkpoint.npz").write_bytes(b"training")  # not finished: unlisted
    manifest.write(run)
    (run / "fold_1" / "oof.npy").write_bytes(b"x" * 50)  # cut short in transit
    (run / "scores.json").write_text("{}")  # written after the manifest
    dropped = manifest.keep_whole(run)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "fold_0", "manifest.json"]
    assert {"fold_1", "fold_2", "scores.json"} <= set(dropped)


def test_the_kernel_script_installs_its_wheel_offline_and_names_what_an_image_lacks(tmp_path):
    """A bare Python (no kagglesalt, Keras or numpy) and no network: the script installs
    the carried wheel with --no-deps and stops with one line naming the missing packages."""
    import subprocess
    import venv

    pytest.importorskip("ensurepip", reason="this Python cannot make a venv with pip")
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=True)  # ensurepip: pip from the standard library
    python = env_dir / "bin" / "python"
    job = {"run": "r", "competition": "tgs-salt-identification-challenge", "plugins": {},
           "plugins_dir": None, "options": {"model": "tiny", "folds": 2}}
    script = tmp_path / "kagglesalt_run.py"
    script.write_text(kernels.kernel_source(job))
    bare = {"PATH": os.environ.get("PATH", ""), "PIP_NO_INDEX": "1",
            "KAGGLESALT_KAGGLE_ROOT": str(tmp_path / "kaggle")}
    result = subprocess.run([str(python), str(script)], capture_output=True, text=True,
                            env=bare, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "Error:" in line]
    assert len(lines) == 1 and "lacks keras, numpy, pandas, opencv-python" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_the_kernel_script_runs_in_an_image_with_the_packages_but_not_kagglesalt(
        tmp_path, synthetic_master):
    """A fresh environment that sees this one's packages (as an image has Keras, numpy,
    ...) but never its kagglesalt: the run is trained by the wheel the script carries."""
    import site
    import subprocess
    import venv

    from kagglesalt.workspace import manifest

    pytest.importorskip("ensurepip", reason="this Python cannot make a venv with pip")
    env_dir = tmp_path / "image"
    venv.create(env_dir, with_pip=True)
    packages = next(env_dir.glob("lib/python*/site-packages"))
    # A path in a .pth file is not a site folder: the .pth files in it (an editable
    # kagglesalt's among them) are not run, so kagglesalt comes only from the wheel.
    (packages / "image.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    root = tmp_path / "kaggle"
    shutil.copytree(synthetic_master, root / "input" / "tgs-salt-identification-challenge")
    (root / "working").mkdir()
    job = {"run": "r", "competition": "tgs-salt-identification-challenge",
           "plugins": kernels.workspace_plugins(str(EXAMPLES)), "plugins_dir": str(EXAMPLES),
           "options": {"model": "tiny", "folds": 2, "name": "r", "settings": {"epochs": 1},
                       "minutes": None}}
    script = tmp_path / "kagglesalt_run.py"
    script.write_text(kernels.kernel_source(job))
    env = {"PATH": os.environ.get("PATH", ""), "PIP_NO_INDEX": "1", "HOME": str(tmp_path),
           "KAGGLESALT_KAGGLE_ROOT": str(root), "KERAS_BACKEND": "tensorflow",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([str(env_dir / "bin" / "python"), str(script)],
                            capture_output=True, text=True, env=env, cwd=root / "working",
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "/site/kagglesalt)" in result.stdout  # the carried wheel, not this checkout
    run = runs.open_run(root / "working" / "runs", "r")
    assert run.finished and (run.path / manifest.MANIFEST).exists()
    assert manifest.keep_whole(run.path) == []


def test_the_kernel_trains_a_fold_on_each_gpu_where_it_has_two_and_ray():
    from kagglesalt.on_kaggle import placement

    assert placement(2, True, 5) == {"ray": "local", "gpus_per_fold": 1.0}  # Kaggle's T4 x2
    assert placement(1, True, 5) == {}  # one GPU: the folds one after another
    assert placement(2, False, 5) == {}  # an image without Ray
    assert placement(0, True, 5) == {}
