"""Fate-sharing for the local Ray instance that `cv --ray` starts: its processes end with
the driver, however the driver ends.

Why: Ray's processes outlive a driver killed with SIGKILL (or by the OOM killer). The
raylet and GCS go at once, but its two agents first try to tell the dead GCS why the raylet
died and wait out Ray's fixed 60 s timeout, so `ps` shows them for a minute, holding
memory and a port. A driver that is killed runs no code, so the watch is a second process:
`watch(driver_pid)` starts it, holding the read end of a pipe whose write end only the
driver has. It notes the driver's descendants every `POLL_SECONDS` (pid and start time, so
a reused pid is never touched); when the pipe closes (the driver is gone, whichever way),
it stops those still alive: SIGTERM, then SIGKILL after `GRACE_SECONDS`. After a clean
`ray.shutdown()` the driver writes one byte instead (`release`), and the watch ends without
stopping anything.

Run as `python -m kagglesalt.reaper DRIVER_PID` with the pipe on stdin; only for an
instance the driver started itself (a cluster given by address is not the driver's to stop).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

POLL_SECONDS = 1.0
GRACE_SECONDS = 3.0


def watch(driver_pid: int | None = None) -> subprocess.Popen:
    """Start the watch of this process's descendants; keep the returned handle alive."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)  # children must not hold the driver's end open
    watcher = subprocess.Popen(
        [sys.executable, "-m", "kagglesalt.reaper", str(driver_pid or os.getpid())],
        stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # a Ctrl-C in the terminal is the driver's to handle
    os.close(read_end)
    watcher.driver_end = write_end  # type: ignore[attr-defined]  # closed by the OS at exit
    return watcher


def release(watcher: subprocess.Popen) -> None:
    """End the watch without stopping anything: the driver shut Ray down itself."""
    end = watcher.driver_end  # type: ignore[attr-defined]
    try:
        os.write(end, b"q")
        os.close(end)
    except OSError:  # the watch is gone already
        pass
    watcher.wait()


def _psutil():
    """psutil (the ray extra has it), else the copy Ray carries in its thirdparty_files."""
    try:
        import psutil
    except ImportError:
        import importlib.util

        spec = importlib.util.find_spec("ray")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            sys.path.append(os.path.join(folder, "thirdparty_files"))
        import psutil
    return psutil


def _descendants(pid: int) -> dict[int, float]:
    psutil = _psutil()

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return {}
    found = {}
    for child in children:
        with _quietly():
            found[child.pid] = child.create_time()
    return found


def _stop(processes: dict[int, float]) -> None:
    psutil = _psutil()

    alive = []
    for pid, started in processes.items():
        with _quietly():
            process = psutil.Process(pid)
            if process.create_time() == started:
                process.terminate()
                alive.append(process)
    _, still = psutil.wait_procs(alive, timeout=GRACE_SECONDS)
    for process in still:
        with _quietly():
            process.kill()


class _quietly:
    """A process that ended between two looks is no longer ours to stop."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is not None and issubclass(kind, _psutil().Error)


def main(argv: list[str]) -> None:
    driver = int(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seen: dict[int, float] = {}
    own = os.getpid()
    while True:
        seen.update({pid: t for pid, t in _descendants(driver).items() if pid != own})
        readable, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if readable:
            if os.read(sys.stdin.fileno(), 1):  # released: a clean shutdown
                return
            break  # EOF: the driver is gone
    _stop(seen)


if __name__ == "__main__":
    main(sys.argv[1:])
