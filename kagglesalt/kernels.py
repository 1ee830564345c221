"""Kaggle's GPUs as one more place where `cv` runs (`kagglesalt cv --on-kaggle`).

Here: the run's options are checked as for a local run and its config.json is written
(`planned_config`: what the kernel must train, which it checks), then a script kernel is
built that carries this kagglesalt as a wheel, the workspace's plugins, the options and
that config (`kernel_source`), with the competition as its data source and a GPU machine;
it is pushed through the official client (`kaggle.push_kernel`), and the version Kaggle
gives is kept in the run folder (`kernel.json`) so that every later call is pinned to it,
and a rerun of the same command follows that version instead of pushing another.
Following polls its status and log; on completion (or an error, or a session cut short)
the output comes home, is checked against the manifest the kernel wrote, and lands as an
ordinary run folder: only what is whole is kept, so a partial download never marks a fold
finished.

There: `kagglesalt.on_kaggle`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kagglesalt import __version__, kaggle, plugins, timestamps
from kagglesalt.atomic import write_json
from kagglesalt.errors import Interrupted, KaggleSaltError, option
from kagglesalt.on_kaggle import SAID
from kagglesalt.progress import Reporter, Silent
from kagglesalt.workspace import Workspace, locks, manifest
from kagglesalt.workspace.runs import DataRecord, Run, RunConfig

# Machine shapes a kernel may ask for (the client passes the name on); the default, two
# T4s, is what a free account gets. "NvidiaTeslaP100" is retired: Kaggle runs a T4 instead.
MACHINES = {"NvidiaTeslaT4": "Tesla T4 (x2)", "NvidiaL4": "L4", "NvidiaL4X1": "L4",
            "NvidiaH100": "H100"}
DEFAULT_MACHINE = "NvidiaTeslaT4"
SOURCE_LIMIT = 1_000_000  # bytes: Kaggle refuses a larger kernel source
RECORD = "kernel.json"  # in the run folder: the pushed version and where it stands
POLL_ENV = "KAGGLESALT_KERNEL_POLL"  # seconds between two looks at a kernel (30)
SESSION_MARGIN_S = 15 * 60  # a budget's kernel session: the budget, plus installing and I/O
SESSION_LIMIT_S = 12 * 3600  # Kaggle stops a session after this, whatever it asked for
DONE = ("complete", "error", "cancel_acknowledged")
EPOCH_LINE_SECONDS = 60.0  # the kernel's epoch lines, said at most this often


@dataclass(frozen=True)
class KernelRecord:
    kernel: str
    version: int
    url: str
    machine: str
    pushed: str
    job: dict[str, Any]

    home: bool = False  # its output is in the run folder
    ended: str | None = None  # the status it ended with, once followed to its end

    @property
    def pushed_version(self) -> kaggle.KernelVersion:
        return kaggle.KernelVersion(self.kernel, self.version, self.url)


def slug_of(name: str) -> str:
    """The kernel's slug for run `name`: what Kaggle makes of its title."""
    return re.sub(r"[^a-z0-9]+", "-", f"kagglesalt {name}".lower()).strip("-")[:50]


def poll_seconds() -> float:
    return kaggle.seconds_from(POLL_ENV, 30.0, 0.05)


# ----------------------------------------------------------------------------- building


def wheel() -> tuple[str, bytes]:
    """This kagglesalt as a wheel (file name, bytes), built from the modules it runs from,
    so that the kernel runs exactly the code that pushed it, an editable install included."""
    import kagglesalt_plugins

    import kagglesalt

    dist = importlib.metadata.distribution("kagglesalt")
    info = f"kagglesalt-{__version__}.dist-info"
    files: dict[str, bytes] = {}
    for module in (kagglesalt, kagglesalt_plugins):  # the built-in models are a package too
        package = Path(module.__file__ or "").parent
        files.update({f"{module.__name__}/{p.relative_to(package).as_posix()}": p.read_bytes()
                      for p in sorted(package.rglob("*.py")) if "__pycache__" not in p.parts})
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or
                                 f"Metadata-Version: 2.1\nName: kagglesalt\nVersion: "
                                 f"{__version__}\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: kagglesalt\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = []
    for name, body in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(body)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = _zip(files)
    return f"kagglesalt-{__version__}-py3-none-any.whl", buffer


def _zip(files: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, body)
    return buffer.getvalue()


SCRIPT = '''\
"""kagglesalt run {run}: made by `kagglesalt cv --on-kaggle`. It carries kagglesalt {version}
as a wheel, installed with --no-deps (the image's own TensorFlow, JAX and Keras stay), and
the run's options; `kagglesalt.on_kaggle` trains it into /kaggle/working/runs/{run}."""
import base64, json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

JOB = json.loads({job!r})
WHEEL = {wheel_name!r}
WHEEL_BASE64 = (
{wheel_lines}
)
here = Path(tempfile.mkdtemp(prefix="kagglesalt-"))
try:
    (here / WHEEL).write_bytes(base64.b64decode("".join(WHEEL_BASE64)))
    site = here / "site"
    code = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-index", "--target", str(site), str(here / WHEEL)]).returncode
    if not code:
        (here / "job.json").write_text(json.dumps(JOB))
        path = os.environ.get("PYTHONPATH")
        env = dict(os.environ, PYTHONPATH=str(site) + (os.pathsep + path if path else ""))
        code = subprocess.run([sys.executable, "-m", "kagglesalt.on_kaggle",
                               str(here / "job.json")], env=env).returncode
finally:
    shutil.rmtree(here, ignore_errors=True)
sys.exit(code)
'''


def kernel_source(job: dict[str, Any]) -> str:
    name, body = wheel()
    encoded = base64.b64encode(body).decode()
    lines = "\n".join(f'    "{encoded[i:i + 96]}"' for i in range(0, len(encoded), 96))
    return SCRIPT.format(run=job["run"], version=__version__, job=json.dumps(job),
                         wheel_name=name, wheel_lines=lines)


def workspace_plugins(plugins_dir: str | None) -> dict[str, str]:
    """The workspace plugins' sources, which the kernel registers as here."""
    given = plugins_dir or os.environ.get(plugins.PLUGINS_DIR_ENV)
    folder = Path(given) if given else None
    if folder is None or not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py"))}


def write_kernel(folder: Path, job: dict[str, Any], owner: str, machine: str,
                 competition: str, kernel_sources: list[str] | None = None) -> Path:
    """The kernel folder the client pushes: kernel-metadata.json and the script."""
    source = kernel_source(job)
    size = len(source.encode())
    if size > SOURCE_LIMIT:
        raise KaggleSaltError(
            f"the kernel's source would be {size / 1e6:.2f} MB, over Kaggle's "
            f"{SOURCE_LIMIT / 1e6:.0f} MB: move large files out of the plugins folder "
            f"({job['plugins_dir'] or 'none'}); the plugins carried are "
            f"{', '.join(job['plugins']) or 'none'}")
    script = folder / "kagglesalt_run.py"
    script.write_text(source)
    slug = slug_of(job["run"])
    write_json(folder / kaggle.KERNEL_METADATA, {
        "id": f"{owner}/{slug}", "title": slug, "code_file": script.name,
        "language": "python", "kernel_type": "script", "is_private": True,
        "enable_gpu": True, "enable_internet": False, "competition_sources": [competition],
        "dataset_sources": [], "kernel_sources": kernel_sources or [],
        "machine_shape": machine})
    return script


# ----------------------------------------------------------------------------- the run


def check_machine(machine: str) -> str:
    if machine == "NvidiaTeslaP100":
        raise KaggleSaltError("NvidiaTeslaP100 is retired on Kaggle (its sessions run on a "
                              f"T4): give {option('kaggle_machine', DEFAULT_MACHINE)}")
    if machine not in MACHINES:
        raise KaggleSaltError(f"{option('kaggle_machine', machine)} is not a GPU machine of "
                              f"Kaggle's: give one of {', '.join(MACHINES)}")
    return machine


def read_record(run_path: Path) -> KernelRecord | None:
    path = run_path / RECORD
    if not path.exists():
        return None
    try:
        return KernelRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise KaggleSaltError(f"{path} is damaged: it named the kernel version this run "
                              "was pushed as; see your kernels on kaggle.com, and move the "
                              "file aside to push again") from None


def away(runs_dir: str | os.PathLike) -> list[tuple[str, KernelRecord]]:
    """The runs pushed to Kaggle whose output has not come home whole, by name."""
    root = Path(runs_dir)
    found = []
    for path in sorted(root.glob(f"*/{RECORD}")) if root.is_dir() else []:
        with contextlib.suppress(KaggleSaltError):
            record = read_record(path.parent)
            if record is not None and not (record.home and Run(path.parent).finished):
                found.append((path.parent.name, record))
    return found


def run_on_kaggle(ws: Workspace, options, machine: str = DEFAULT_MACHINE,
                  reporter: Reporter | None = None,
                  competition: str = kaggle.COMPETITION) -> Run:
    """Push the run as a kernel (or find the version pushed before), follow it, and bring
    its output home as `runs/NAME`; see the module's docstring."""
    from kagglesalt import cv

    reporter = reporter or Silent()
    check_machine(machine)
    if options.ray is not None or options.pseudo is not None or \
            options.folds_to_train is not None:
        raise KaggleSaltError("--on-kaggle trains every fold in the kernel: leave out --ray "
                              "and --pseudo")
    spec, chosen = cv.check_options(options)
    if spec.source.startswith("entry point"):  # the kernel carries kagglesalt's own models
        raise KaggleSaltError(f"model {options.model} comes from an installed package "
                              f"({spec.source}), which a kernel does not carry: put its "
                              f"module in a {option('plugins_dir')} folder, whose plugins "
                              "go with the kernel")
    if options.minutes is not None and \
            options.minutes * 60 + SESSION_MARGIN_S > SESSION_LIMIT_S:
        most = (SESSION_LIMIT_S - SESSION_MARGIN_S) // 60
        raise KaggleSaltError(f"Kaggle stops a session at {SESSION_LIMIT_S // 3600} hours, and "
                              f"a budget of {options.minutes:g} minutes plus the kernel's "
                              f"{SESSION_MARGIN_S // 60} of setting up is more: give "
                              f"{option('minutes', most)} or less")
    name = options.name or f"{options.model}-k{options.folds}-s{chosen.seed}"
    run = Run(Path(ws.runs_dir) / name)
    new_root = not Path(ws.runs_dir).exists()
    with locks.holding(run.path, f"run {name}"):
        try:
            return _push_follow_home(ws, options, spec, chosen, name, machine, competition,
                                     run, reporter)
        finally:
            cv.drop_if_empty(run.path, new_root)  # nothing pushed, nothing kept


def trained_here(run: Run) -> bool:
    """Whether a fold of the run was trained (or begun) in this folder: a config.json alone
    is what a push, or a local run stopped before its first fold, writes first."""
    return any(run.path.glob("fold_*"))


def _push_follow_home(ws: Workspace, options, spec, chosen, name: str, machine: str,
                      competition: str, run: Run, reporter: Reporter) -> Run:
    """Under the run's lock: what `run_on_kaggle` says."""
    record = read_record(run.path)
    if record is None and trained_here(run):  # the kernel's folds are not its own
        raise KaggleSaltError(f"run {name} was started here, not on Kaggle: rerun it without "
                              f"--on-kaggle to go on, or give a new {option('name')}")
    asked = _job_options(options, name)
    if record is not None and record.job["options"] != asked:
        changed = sorted(k for k in asked if asked[k] != record.job["options"].get(k))
        raise KaggleSaltError(f"run {name} was pushed to Kaggle with other {', '.join(changed)} "
                              f"(kernel {record.kernel} version {record.version}): give the "
                              f"same options to follow it, or a new {option('name')}")
    if record is not None and record.home and run.finished:
        reporter.message(f"Run {name} came home from kernel {record.kernel} version "
                         f"{record.version} already: nothing to do")
        return run
    if record is None or record.ended not in (None, "complete"):
        # A first push, or a version that ended short of its end (an error, Kaggle's
        # session limit): a new version goes on from the folds the last one finished.
        after = record if record is not None and record.job["run"] == name else None
        record = _push(ws, options, spec, chosen, run, machine, competition, reporter,
                       after)
        write_json(run.path / RECORD, asdict(record))
    else:
        reporter.message(f"Following kernel {record.kernel} version {record.version}, "
                         f"pushed {record.pushed} ({record.url})")
    status, failure = follow(record, reporter)
    record = dataclasses.replace(record, ended=status)
    write_json(run.path / RECORD, asdict(record))
    dropped = bring_home(run, record, reporter)
    if status != "complete":
        detail = f": {failure}" if failure else ""
        raise KaggleSaltError(
            f"kernel {record.kernel} version {record.version} ended {status}{detail}; "
            f"{run.folds_done() if run.started else 0} fold(s) came home whole (the log's "
            "last lines are above): fix the cause if it is yours, and rerun the command: a "
            "new version goes on from the folds finished")
    if not run.finished:
        raise KaggleSaltError(f"kernel {record.kernel} version {record.version} finished, but "
                              f"its output came home incomplete ({', '.join(dropped[:3])}): "
                              "rerun the command to download it again")
    return run


def estimate(runs_dir: str | os.PathLike, model: str, chosen, folds: int,
             machine: str) -> str | None:
    """The run's time on `machine` before it is pushed, from the rates an earlier run of
    the same model and settings measured there (its config.json; a budget's epochs
    aside); None where none did: the kernel times the model and its log says so."""
    from kagglesalt.model import budget, settings
    from kagglesalt.workspace import runs

    wanted = {k: v for k, v in settings.as_config(chosen).items() if k not in ("epochs",)}
    for run in runs.all_runs(runs_dir):
        with contextlib.suppress(KaggleSaltError, KeyError, TypeError, ValueError):
            record = read_record(run.path)
            config = run.config
            same = {k: v for k, v in config.settings.items() if k not in ("epochs",)}
            if record is None or record.machine != machine or config.model != model or \
                    same != wanted or not config.rates:
                continue
            rates = budget.Rates(dict(config.rates["train"]), config.rates["predict"],
                                 config.rates["compile"])
            work = budget.Workload.of_folds(config.data.train, config.data.test, folds)
            seconds = budget.run_seconds(chosen, work, folds, rates, config.data.train)
            hours = seconds / 3600
            return (f"about {hours:.1f} h on {MACHINES[machine]} ({folds} folds of "
                    f"{chosen.epochs} epochs at the rates run {run.name} measured there)")
    return None


def _job_options(options, name: str) -> dict[str, Any]:
    """The `cv.CVOptions` the kernel trains with (JSON's view of them)."""
    return json.loads(json.dumps({"model": options.model, "folds": options.folds,
                                  "name": name, "settings": options.settings,
                                  "minutes": options.minutes}))


def planned_config(spec, chosen, name: str, folds: int, machine: str,
                   competition: str) -> RunConfig:
    """The run's config.json as written here before the first push: the model, folds,
    seed and every setting as resolved here, which the kernel checks it trains with
    (`on_kaggle.check_config`); the data, the rates, the device and the versions there are
    the kernel's to record (`_merge` takes them from its config.json)."""
    from kagglesalt.model import settings

    return RunConfig(name=name, model=spec.name, folds=folds, seed=chosen.seed,
                     settings=settings.as_config(chosen),
                     data=DataRecord(f"kaggle:{competition}", 0, 0, ""),
                     model_source=spec.source, versions={"kagglesalt": __version__},
                     command=" ".join(sys.argv), created=timestamps.now(),
                     device=f"{MACHINES[machine]} on Kaggle, not trained yet")


def _push(ws: Workspace, options, spec, chosen, run: Run, machine: str, competition: str,
          reporter: Reporter, after: KernelRecord | None = None) -> KernelRecord:
    """Write the run's config.json here, then push a new version that trains exactly it;
    `after`, the version before it, whose output (the folds it finished, and their
    config.json, now the one here) becomes the new one's input."""
    name = run.name
    owner = kaggle.username()
    kaggle.check_competition_access(competition)
    quota = kaggle.gpu_quota()
    if quota is not None and quota[0] >= quota[1]:
        raise KaggleSaltError(f"this week's GPU quota on Kaggle is used up ({quota[0]:.1f} of "
                              f"{quota[1]:.0f} hours): wait for it to refresh, or train here")
    job = {"run": name, "competition": competition, "plugins_dir": options.plugins_dir,
           "command": " ".join(sys.argv),  # as a local run records it
           "plugins": workspace_plugins(options.plugins_dir),
           "options": _job_options(options, name),
           "resume_from": after.kernel if after is not None else None}
    # A version going on from folds that came home trains the config.json they came with;
    # any other push, the one written here now.
    going_on = after is not None and run.started and trained_here(run)
    config = run.config if going_on else \
        planned_config(spec, chosen, name, options.folds, machine, competition)
    job["config"] = config.to_json()
    timeout = int(options.minutes * 60 + SESSION_MARGIN_S) if options.minutes else None
    if options.minutes is None:
        said = estimate(ws.runs_dir, options.model, chosen, options.folds, machine)
        reporter.message(f"Without --minutes, the run takes {said}" if said else
                         f"No run of {options.model} with these settings has trained on "
                         f"{MACHINES[machine]} yet: the kernel times it there, and its "
                         "first lines say how long it will take")
    with tempfile.TemporaryDirectory(prefix="kagglesalt-kernel-") as folder:
        write_kernel(Path(folder), job, owner, machine, competition,
                     [after.kernel] if after is not None else [])
        if not going_on:
            write_json(run.path / "config.json", config.to_json())
        try:
            pushed = kaggle.push_kernel(Path(folder), machine, timeout, competition)
        except BaseException:
            if not going_on:  # nothing pushed (or not known to be): nothing kept
                (run.path / "config.json").unlink(missing_ok=True)
            raise
    if quota is not None:
        reporter.message(f"GPU quota: {quota[0]:.1f} of {quota[1]:.0f} hours used this week")
    whence = f", going on from version {after.version}'s finished folds" \
        if after is not None else ""
    reporter.message(f"Pushed kernel {pushed.kernel} version {pushed.version} on "
                     f"{MACHINES[machine]}{whence}: {pushed.url}")
    return KernelRecord(pushed.kernel, pushed.version, pushed.url, machine,
                        timestamps.now(), job)


def follow(record: KernelRecord, reporter: Reporter) -> tuple[str, str]:
    """Poll the pinned version until it ends. Says each change of status, each new line of
    the kernel's about its folds, and its latest epoch line at most every
    `EPOCH_LINE_SECONDS`; the log's last lines when it fails. Ctrl-C detaches: the kernel
    keeps running."""
    version = record.pushed_version
    started = time.monotonic()
    said_status, said_lines, epoch_said_at = "", 0, -EPOCH_LINE_SECONDS
    try:
        while True:
            status, failure = kaggle.kernel_status(version)
            lines = kaggle.log_lines(kaggle.kernel_log(version)) if status != "queued" else []
            ours = [line[len(SAID):] for line in lines if line.startswith(SAID)]
            elapsed = time.monotonic() - started
            where = f"kernel {version.pinned}: {status}, {elapsed:.0f} s"
            news = ours[said_lines:]
            said_lines = len(ours)
            if status != said_status:
                reporter.message(where)
                said_status = status
            for line in news[:-1] if news else []:
                if not line.startswith("epoch "):
                    reporter.message(f"{where}: {line}")
            if news and (not news[-1].startswith("epoch ") or
                         elapsed - epoch_said_at >= EPOCH_LINE_SECONDS):
                reporter.message(f"{where}: {news[-1]}")
                epoch_said_at = elapsed if news[-1].startswith("epoch ") else epoch_said_at
            if status in DONE:
                if status != "complete":
                    for line in lines[-10:]:
                        reporter.message(f"  | {line}")
                return status, failure
            time.sleep(poll_seconds())
    except KeyboardInterrupt:
        raise Interrupted(f"Detached: kernel {version.pinned} keeps running on Kaggle "
                          f"({record.url}); `kagglesalt cv --name {record.job['run']} "
                          "--on-kaggle` follows it again and brings the run home") from None


def bring_home(run: Run, record: KernelRecord, reporter: Reporter) -> list[str]:
    """Download the version's output and put what is whole into the run folder (finished
    folds already there and not in the output are kept); returns what was dropped."""
    version = record.pushed_version
    staging = Path(tempfile.mkdtemp(prefix=f".{run.name}.kaggle.", dir=run.path.parent))
    try:
        kaggle.kernel_output(version, staging)
        came = staging / "runs" / run.name
        if not (came / manifest.MANIFEST).is_file():
            reporter.message(f"kernel {version.pinned} left no finished fold in its output")
            return ["everything (no manifest)"]
        dropped = manifest.keep_whole(came)
        for name in dropped:
            reporter.message(f"from kernel {version.pinned}: {name} did not come home whole "
                             "and is left out")
        arrived = Run(came)
        if not arrived.started:
            return dropped + ["config.json"]
        if any(arrived.fold_summary(k) is None for k in range(arrived.n_folds)):
            arrived.unfinish()  # a run is finished only with every fold
        _merge(run, came, record)
        return dropped
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merge(run: Run, came: Path, record: KernelRecord) -> None:
    """Into `came`: the local run's finished folds it lacks and the record; `came` then
    replaces the run folder (the old one moved aside first, so it is never half)."""
    here = Run(came)
    if run.started:
        for k in range(here.n_folds):
            if here.fold_summary(k) is None and run.fold_summary(k) is not None and \
                    run.fold_problem(k) is None:
                shutil.rmtree(here.fold_dir(k), ignore_errors=True)
                shutil.copytree(run.fold_dir(k), here.fold_dir(k))
    config = json.loads((came / "config.json").read_text())
    planned = record.job.get("config") or {}
    # What was decided here stays as it was written here: when, by which command, the
    # model's source; the data, rates, device and versions are the kernel's.
    for key in ("created", "command", "model_source"):
        if key in planned:
            config[key] = planned[key]
    config["device"] = (f"{config.get('device', 'GPU')} on Kaggle, kernel {record.kernel} "
                        f"version {record.version}")
    write_json(came / "config.json", config)
    (came / manifest.MANIFEST).unlink(missing_ok=True)
    # The run folder holds its lock, so its contents are swapped, not the folder: the
    # record that says the run is home moves last, so a kill before it brings it home again.
    (came / RECORD).unlink(missing_ok=True)
    home = here.finished
    for item in run.path.iterdir():  # the lock files stay: this process holds them
        if item.name not in (locks.LOCK, locks.HOLDER, RECORD):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    for item in came.iterdir():
        os.replace(item, run.path / item.name)
    with contextlib.suppress(OSError):
        came.rmdir()
    write_json(run.path / RECORD, {**asdict(record), "home": home})
