"""Folds fanned out over a Ray cluster (`kagglesalt cv --ray`); the only module that imports
Ray, an optional extra (`pip install 'kagglesalt[ray]'`).

The driver puts the arrays into Ray's object store once; each fold is one task that calls
the same `fold.train_fold` as the local loop and returns its `FoldResult` (history, OOF and
test levels, the models as bytes), and the driver writes each fold into the run folder as it
arrives. No file system is shared. Workers report their epochs to a small actor that the
driver reads, so the terminal shows a line per running fold. A worker that dies is retried
by Ray (`max_retries`); Ctrl-C cancels the running tasks and keeps the finished folds.
"""

from __future__ import annotations

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

from kagglesalt.errors import KaggleSaltError, option

LOCAL = "local"  # `--ray` without an address: a Ray instance on this machine
MAX_RETRIES = 2  # attempts after a worker died mid-fold
POLL_SECONDS = 0.5
# What a worker needs to import Keras on the same backend, quietly, as the driver does.
FORWARDED_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "KAGGLESALT_JAX_CACHE",
                 "PYTHONHASHSEED", "XLA_PYTHON_CLIENT_PREALLOCATE")


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
        try:
            ray.init(address=None if address == LOCAL else address,
                     runtime_env={"env_vars": env}, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except Exception as e:  # ConnectionError, a bad address, a version mismatch
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
        """Progress events from the workers, drained by the driver."""

        def __init__(self):
            self.events: list[tuple[str, tuple]] = []

        def post(self, kind: str, args: tuple) -> None:
            self.events.append((kind, args))

        def drain(self) -> list[tuple[str, tuple]]:
            events, self.events = self.events, []
            return events

    return Board


def _fold_task(model: str, plugin_files: dict[str, str], settings_config: dict[str, Any],
               images: np.ndarray, masks: np.ndarray, assignment: np.ndarray,
               test_images: np.ndarray, fold: int, folds: int, board,
               gpu_share: float, within: Any = None,
               extra: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """One fold on a worker: the model's plugin loaded there, `fold.train_fold` called."""
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
        def fold_start(self, *args):
            board.post.remote("fold_start", args)

        def epoch_end(self, epoch, row):
            board.post.remote("epoch_end", (epoch, {**row, "fold": fold}))

        def fold_epochs(self, *args):
            board.post.remote("fold_epochs", args)

        def fold_end(self, *args):
            board.post.remote("fold_end", args)

    with tempfile.TemporaryDirectory() as folder:
        for name, source in plugin_files.items():
            Path(folder, name).write_text(source)
        plugins.reset()
        spec = plugins.get_model(model, folder if plugin_files else None)
        from kagglesalt.model.results import FoldJob

        job = FoldJob.of(images, masks, assignment, fold, folds, test_images, extra)
        return train_fold(spec, from_config(settings_config), job, Forward(), within)


def train_folds(cluster: Cluster, model: str, settings_config: dict[str, Any],
                images: np.ndarray, masks: np.ndarray, assignment: np.ndarray,
                test_images: np.ndarray, pending: Sequence[int], folds: int,
                plugins_dir: str | os.PathLike | None, store: Callable[[Any], Any],
                reporter, within: Any = None,
                extra: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Train the `pending` folds as Ray tasks; `store(result)` is called on the driver as
    each finishes. On Ctrl-C (or any error) the unfinished tasks are cancelled. `within`:
    each fold's time budget (a `budget.FoldBudget`), kept on the worker's own clock."""
    ray = _import_ray()
    board = _board_class().remote()
    refs = [ray.put(a) for a in (images, masks, assignment, test_images)]
    task = ray.remote(_fold_task).options(
        num_cpus=cluster.cpus_per_fold, num_gpus=cluster.gpus_per_fold,
        max_retries=MAX_RETRIES, retry_exceptions=False)
    plugin_files = workspace_plugins(plugins_dir)
    extra_ref = ray.put(extra) if extra is not None else None
    running = {task.remote(model, plugin_files, settings_config, *refs[:3], refs[3], k,
                           folds, board, cluster.gpus_per_fold, within, extra_ref): k
               for k in pending}
    reporter.message(f"Training folds {', '.join(str(k + 1) for k in pending)} on "
                     f"{cluster.describe()}")
    try:
        while running:
            done, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_SECONDS)
            for ref in done:  # stored before anything else, so an interrupt keeps them
                running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) else e
                    if isinstance(cause, KaggleSaltError):
                        raise cause from None
                    raise
                except ray.exceptions.WorkerCrashedError:
                    raise KaggleSaltError(f"the worker of a fold died {MAX_RETRIES + 1} "
                                          "times: see the Ray logs (/tmp/ray/session_latest/"
                                          "logs)") from None
                store(result)
            _replay(ray.get(board.drain.remote()), reporter)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if running:  # let cancelled workers go before the driver exits
            time.sleep(0.2)


def _replay(events: list[tuple[str, tuple]], reporter) -> None:
    for kind, args in events:
        getattr(reporter, kind)(*args)


def shutdown() -> None:
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()
