"""Folds fanned out over a Ray cluster (`kagglesalt cv --ray`); the only module that imports
Ray, an optional extra (`pip install 'kagglesalt[ray]'`).

The driver puts the arrays into Ray's object store once; each fold is one task that calls
the same `fold.train_fold` as the local loop and returns its `FoldResult` (history, OOF and
test levels, the models as bytes), and the driver writes each fold into the run folder as it
arrives. No file system is shared. Workers report their epochs to a small actor that the
driver reads, so the terminal shows a line per running fold. A worker that dies is retried
by the driver from its latest checkpoint; Ctrl-C cancels the running tasks and keeps the
finished folds. A local instance ends with the driver, even a killed one (`reaper`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kagglesalt import reaper
from kagglesalt.errors import KaggleSaltError, option

LOCAL = "local"  # `--ray` without an address: a Ray instance on this machine
MAX_RETRIES = 2  # attempts after a worker died mid-fold
POLL_SECONDS = 0.5
# What a worker needs to import Keras on the same backend, quietly, as the driver does.
FORWARDED_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "KAGGLESALT_JAX_CACHE",
                 "PYTHONHASHSEED", "XLA_PYTHON_CLIENT_PREALLOCATE")

# The watch that stops the local instance's processes if the driver is killed (`reaper`).
_watch: Any = None


@dataclass(frozen=True)
class Cluster:
    address: str
    cpus_per_fold: float
    gpus_per_fold: float
    resources: dict[str, float]

    def slots(self) -> int:
        """How many folds the cluster trains at once."""
        counts = [self.resources.get("CPU", 0) / self.cpus_per_fold]
        if self.gpus_per_fold:
            counts.append(self.resources.get("GPU", 0) / self.gpus_per_fold)
        return max(1, int(min(counts) + 1e-9))

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == LOCAL else \
            f"the Ray cluster at {self.address}"
        return (f"{where}: {self.resources.get('CPU', 0):g} CPUs, "
                f"{self.resources.get('GPU', 0):g} GPUs; each fold takes "
                f"{self.cpus_per_fold:g} CPU(s) and {self.gpus_per_fold:g} GPU(s)")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise KaggleSaltError(f"{option('ray')} needs Ray: pip install 'kagglesalt[ray]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray keeps retrying an address where nothing listens for minutes; a plain TCP
    connection tells at once. ("auto" and names Ray resolves itself are left to Ray.)"""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise KaggleSaltError(f"cannot reach a Ray cluster at {address}: {e.strerror or e}; "
                              "start one with `ray start --head`, or give "
                              f"{option('ray', 'local')} for a local instance") from None


def connect(address: str, cpus_per_fold: float = 1.0,
            gpus_per_fold: float | None = None) -> Cluster:
    """Start or join Ray and check that one fold fits; one line if either fails."""
    ray = _import_ray()
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    from kagglesalt.model.backend import keras_backend

    env["KERAS_BACKEND"] = keras_backend()
    if address != LOCAL:
        _check_reachable(address)
    if not ray.is_initialized():
        global _watch
        if address == LOCAL and _watch is None:
            _watch = reaper.watch()
        try:
            ray.init(address=None if address == LOCAL else address,
                     runtime_env={"env_vars": env}, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except Exception as e:  # ConnectionError, a bad address, a version mismatch
            _release_watch()
            if "AF_UNIX path length" in str(e):  # Ray's sockets live under its temp folder
                raise KaggleSaltError(
                    "Ray cannot start here: its sockets under "
                    f"{os.environ.get('RAY_TMPDIR') or tempfile.gettempdir()} would "
                    "have paths longer than a socket's 107 bytes: set RAY_TMPDIR to a short "
                    "folder (export RAY_TMPDIR=/tmp/ray)") from None
            raise KaggleSaltError(f"cannot reach a Ray cluster at {address}: "
                                  f"{type(e).__name__}: {str(e).splitlines()[0]}; start one "
                                  "with `ray start --head`, or give "
                                  f"{option('ray', 'local')} for a local instance") from None
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    if gpus_per_fold is None:
        gpus_per_fold = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    cluster = Cluster(address, cpus_per_fold, gpus_per_fold, resources)
    for kind, need in (("CPU", cpus_per_fold), ("GPU", gpus_per_fold)):
        if need > resources.get(kind, 0):
            raise KaggleSaltError(f"one fold asks for {need:g} {kind}(s) but the cluster has "
                                  f"{resources.get(kind, 0):g}: lower "
                                  f"{option(kind.lower() + 's_per_fold')}, or add machines with "
                                  "`ray start --address=...`")
    check_versions(ray)
    return cluster


def versions() -> dict[str, str]:
    """What a fold's result depends on, here: kagglesalt's and Keras's versions."""
    import importlib.metadata
    import socket

    from kagglesalt import __version__

    return {"host": socket.gethostname(), "kagglesalt": __version__,
            "keras": importlib.metadata.version("keras")}


def check_versions(ray) -> None:
    """Every live node of the cluster runs the driver's kagglesalt and Keras; one line
    naming the first that does not."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(versions)
    nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
    found = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node, soft=False)).remote() for node in nodes], timeout=120)
    mine = versions()
    for theirs in found:
        if (theirs["kagglesalt"], theirs["keras"]) != (mine["kagglesalt"], mine["keras"]):
            raise KaggleSaltError(
                f"the Ray node on {theirs['host']} runs kagglesalt {theirs['kagglesalt']} with "
                f"Keras {theirs['keras']}, this machine kagglesalt {mine['kagglesalt']} with "
                f"Keras {mine['keras']}: install the same versions on every machine")


def workspace_plugins(plugins_dir: str | os.PathLike | None) -> dict[str, str]:
    """The workspace plugin files (name -> source), sent to workers that lack them."""
    from kagglesalt.plugins import PLUGINS_DIR_ENV

    folder = plugins_dir or os.environ.get(PLUGINS_DIR_ENV)
    if not folder or not Path(folder).is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(Path(folder).glob("*.py"))}


def _board_class():
    ray = _import_ray()

    @ray.remote(num_cpus=0)
    class Board:
        """Progress events from the workers, drained by the driver; and each fold's latest
        checkpoint (`FoldState.pack()`), which the driver stores in the run folder and
        gives a fold it tries again."""

        def __init__(self):
            self.events: list[tuple[str, tuple]] = []
            self.checkpoints: dict[int, dict[str, np.ndarray]] = {}
            self.fresh: set[int] = set()

        def post(self, kind: str, args: tuple) -> None:
            self.events.append((kind, args))

        def drain(self) -> list[tuple[str, tuple]]:
            events, self.events = self.events, []
            return events

        def keep(self, fold: int, arrays: dict[str, np.ndarray]) -> None:
            self.checkpoints[fold] = arrays
            self.fresh.add(fold)

        def drain_checkpoints(self) -> dict[int, dict[str, np.ndarray]]:
            fresh, self.fresh = self.fresh, set()
            return {fold: self.checkpoints[fold] for fold in fresh}

    return Board


def _fold_task(model: str, plugin_files: dict[str, str], settings_config: dict[str, Any],
               images: np.ndarray, masks: np.ndarray, assignment: np.ndarray,
               test_images: np.ndarray, fold: int, folds: int, board,
               gpu_share: float, within: Any = None,
               extra: tuple[np.ndarray, np.ndarray] | None = None,
               kept: dict[str, np.ndarray] | None = None) -> Any:
    """One fold on a worker: the model's plugin loaded there, `fold.train_fold` called,
    going on from `kept` (a `FoldState.pack()`) if given and posting new checkpoints to
    the board. Nothing here waits on the board: a task blocked in `ray.get` gives its CPU
    back to Ray, which would start another fold beside it."""

    if 0 < gpu_share < 1:
        # JAX takes 75% of a GPU's memory up front; folds sharing one must take their part.
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 * gpu_share:.2f}")
    from kagglesalt import plugins
    from kagglesalt.model.backend import import_keras, keep_freed_memory
    from kagglesalt.model.settings import from_config

    keep_freed_memory()
    import_keras()
    from kagglesalt.model.fold import train_fold
    from kagglesalt.progress import Reporter

    class Forward(Reporter):
        def message(self, text):
            board.post.remote("message", (text,))

        def fold_start(self, *args):
            board.post.remote("fold_start", args)

        def epoch_end(self, epoch, row):
            board.post.remote("epoch_end", (epoch, {**row, "fold": fold}))

        def fold_epochs(self, *args):
            board.post.remote("fold_epochs", args)

        def fold_end(self, *args):
            board.post.remote("fold_end", args)

    import ray

    gpus = ray.get_gpu_ids()  # the GPUs Ray gave this task (CUDA_VISIBLE_DEVICES holds them)
    Forward().message(f"fold {fold + 1}/{folds} trains on {socket.gethostname()}, " +
                      (f"GPU {', '.join(map(str, gpus))}" if gpus else "CPU only"))
    with tempfile.TemporaryDirectory() as folder:
        for name, source in plugin_files.items():
            Path(folder, name).write_text(source)
        plugins.reset()
        spec = plugins.get_model(model, folder if plugin_files else None)
        from kagglesalt.model.results import FoldJob, FoldState, UnusableState

        job = FoldJob.of(images, masks, assignment, fold, folds, test_images, extra)
        settings = from_config(settings_config)

        def save(state: FoldState) -> None:
            board.keep.remote(fold, state.pack())

        try:
            resume = FoldState.unpack(kept) if kept is not None else None
            return train_fold(spec, settings, job, Forward(), within, resume, save)
        except UnusableState as e:  # found before any training: the fold starts over
            Forward().message(f"fold {fold + 1}/{folds}: its checkpoint does not load ({e}); "
                              "the fold starts over")
            return train_fold(spec, settings, job, Forward(), within, None, save)


def train_folds(cluster: Cluster, model: str, settings_config: dict[str, Any],
                images: np.ndarray, masks: np.ndarray, assignment: np.ndarray,
                test_images: np.ndarray, pending: Sequence[int], folds: int,
                plugins_dir: str | os.PathLike | None, store: Callable[[Any], Any],
                reporter, within: Any = None,
                extra: tuple[np.ndarray, np.ndarray] | None = None,
                states: dict[int, dict[str, np.ndarray]] | None = None,
                keep: Callable[[int, dict[str, np.ndarray]], Any] | None = None) -> None:
    """Train the `pending` folds as Ray tasks; `store(result)` is called on the driver as
    each finishes. On Ctrl-C (or any error) the unfinished tasks are cancelled. `within`:
    each fold's time budget (a `budget.FoldBudget`), kept on the worker's own clock.
    `states`: the folds' kept checkpoints (`FoldState.pack()`) to go on from; `keep(k,
    arrays)` is called on the driver with each checkpoint a fold makes, so a Ctrl-C and a
    rerun (on Ray or not) go on from it. A fold whose worker died is tried again here, up
    to MAX_RETRIES times, from its latest checkpoint (not by Ray's own retries, which would
    give it the first one)."""
    ray = _import_ray()
    board = _board_class().remote()
    latest = dict(states or {})
    refs = [ray.put(a) for a in (images, masks, assignment, test_images)]
    task = ray.remote(_fold_task).options(
        num_cpus=cluster.cpus_per_fold, num_gpus=cluster.gpus_per_fold, max_retries=0,
        retry_exceptions=False)
    plugin_files = workspace_plugins(plugins_dir)
    extra_ref = ray.put(extra) if extra is not None else None

    def launch(k: int):
        return task.remote(model, plugin_files, settings_config, *refs[:3], refs[3], k, folds,
                           board, cluster.gpus_per_fold, within, extra_ref, latest.get(k))

    running = {launch(k): k for k in pending}
    tries = {k: 1 for k in pending}
    reporter.message(f"Training folds {', '.join(str(k + 1) for k in pending)} on "
                     f"{cluster.describe()}")

    def keep_latest(fold: int, arrays: dict[str, np.ndarray]) -> None:
        latest[fold] = arrays
        if keep is not None:
            keep(fold, arrays)

    try:
        while running:
            done, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_SECONDS)
            for ref in done:  # stored before anything else, so an interrupt keeps them
                k = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) else e
                    if isinstance(cause, KaggleSaltError):
                        raise cause from None
                    raise
                except ray.exceptions.WorkerCrashedError:
                    if tries[k] > MAX_RETRIES:
                        raise KaggleSaltError(f"the worker of fold {k + 1} died {tries[k]} "
                                              "times: see the Ray logs (/tmp/ray/"
                                              "session_latest/logs)") from None
                    _keep_checkpoints(ray, board, keep_latest, {*running.values(), k})
                    tries[k] += 1
                    running[launch(k)] = k  # from its latest checkpoint
                    continue
                store(result)
            _replay(ray.get(board.drain.remote()), reporter)
            _keep_checkpoints(ray, board, keep_latest, set(running.values()))
    finally:
        # Folds that finished while the driver was stopped (their results ready, not yet
        # collected) are stored, not cancelled; the others keep their last checkpoints.
        with contextlib.suppress(Exception):
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
            for ref in ready:
                store(ray.get(ref))
                running.pop(ref)
        with contextlib.suppress(Exception):
            _keep_checkpoints(ray, board, keep_latest, set(running.values()))
        for ref in running:
            ray.cancel(ref, force=True)
        if running:  # let cancelled workers go before the driver exits
            time.sleep(0.2)


def _keep_checkpoints(ray, board, keep: Callable[[int, dict[str, np.ndarray]], Any],
                      unfinished: set[int]) -> None:
    """The folds' new checkpoints, handed to `keep`, for the `unfinished` folds: a
    finished fold needs none."""
    for fold, arrays in ray.get(board.drain_checkpoints.remote()).items():
        if fold in unfinished:
            keep(fold, arrays)


def _replay(events: list[tuple[str, tuple]], reporter) -> None:
    for kind, args in events:
        getattr(reporter, kind)(*args)


def shutdown() -> None:
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()
    _release_watch()


def _release_watch() -> None:
    global _watch
    if _watch is not None:
        reaper.release(_watch)
        _watch = None
