"""The Kaggle adapter: the only module that imports the official `kaggle` client.

The client is imported lazily and silently (on import it tries to log in and prints a help
text when it finds no credentials). Credentials are found here, in the places the client
documents, and handed to it, so that one message can say what is missing; keys are never
printed. Every client or network failure becomes a one-line KaggleSaltError.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kagglesalt import data, timestamps
from kagglesalt.atomic import write_json
from kagglesalt.data import SOURCE_MARKER
from kagglesalt.errors import KaggleSaltError, Message, option

COMPETITION = "tgs-salt-identification-challenge"
CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Credentials:
    source: str
    username: str | None = None
    key: str | None = None
    token: str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"Credentials(source={self.source!r}, username={self.username!r})"


def _config_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        dirs.append(Path(os.environ["KAGGLE_CONFIG_DIR"]))
    home = Path(os.path.expanduser("~"))
    dirs.append(home / ".kaggle")
    dirs.append(Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle")
    return dirs


def find_credentials(warn: Warn | None = None) -> Credentials:
    """KAGGLE_API_TOKEN, then KAGGLE_USERNAME/KAGGLE_KEY, then kaggle.json or access_token."""
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        if Path(token).is_file():
            token = Path(token).read_text().strip()
        return Credentials("KAGGLE_API_TOKEN", token=token)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return Credentials("KAGGLE_USERNAME/KAGGLE_KEY", os.environ["KAGGLE_USERNAME"],
                           os.environ["KAGGLE_KEY"])
    for folder in _config_dirs():
        path = folder / "kaggle.json"
        if path.is_file():
            if warn and os.name != "nt" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
                warn(f"Warning: {path} is readable by other users: run `chmod 600 {path}`")
            try:
                values = json.loads(path.read_text())
                return Credentials(str(path), str(values["username"]), str(values["key"]))
            except (ValueError, KeyError, TypeError):
                raise KaggleSaltError(f"{path} is not a valid kaggle.json (it needs "
                                      '{"username": ..., "key": ...}): download a new one '
                                      "from your Kaggle account settings") from None
        access = folder / "access_token"
        if access.is_file() and access.read_text().strip():
            return Credentials(str(access), token=access.read_text().strip())
    raise KaggleSaltError(
        "no Kaggle credentials: put kaggle.json (Kaggle > Settings > API > Create New Token) in "
        "~/.kaggle/ (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The client prints help texts and progress on its own; keep them off the screen."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _api(credentials: Credentials):
    with _quiet():
        from kaggle.api.kaggle_api_extended import KaggleApi
    api = KaggleApi()
    values: dict[str, str] = {}
    if credentials.token:
        values[api.CONFIG_NAME_TOKEN] = credentials.token
    else:
        values[api.CONFIG_NAME_USER] = credentials.username or ""
        values[api.CONFIG_NAME_KEY] = credentials.key or ""
    api.config_values = values
    api._authenticated = True
    return api


TIMEOUT_ENV = "KAGGLESALT_NETWORK_TIMEOUT"  # seconds a connection may stay silent (60)
RETRIES = 3  # tries of a call that is safe to repeat (a listing, a download's request)


class OutcomeUnknown(KaggleSaltError):
    """The request that records a submission was sent, and its answer lost: Kaggle may
    have it."""


class Refused(KaggleSaltError):
    """Kaggle answered, and said no (HTTP 4xx): nothing was done there."""


def seconds_from(env: str, default: float, least: float) -> float:
    """A number of seconds set by environment variable `env`, at least `least`."""
    try:
        return max(least, float(os.environ.get(env, default)))
    except ValueError:
        raise KaggleSaltError(f"{env}={os.environ[env]} is not a number of seconds") from None


def network_timeout() -> float:
    return seconds_from(TIMEOUT_ENV, 60.0, 0.1)


@contextlib.contextmanager
def _bounded() -> Iterator[list[str]]:
    """Every request the client sends meanwhile gets a timeout (the client sets none, so a
    connection that accepts and never answers would hang for ever); yields the URLs sent,
    so that a failure can say which request it cut."""
    from requests.adapters import HTTPAdapter

    sent: list[str] = []
    original = HTTPAdapter.send
    timeout = network_timeout()

    def send(adapter, request, *args, **kwargs):
        sent.append(request.url or "")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (min(timeout, 30.0), timeout)
        return original(adapter, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
    try:
        yield sent
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]


def _retried(call: Callable[[], Any], attempts: int = RETRIES) -> Any:
    """`call()`, tried again after a connection failure, a timeout or a server error (5xx):
    only for calls that change nothing on Kaggle."""
    import time

    import requests

    for attempt in range(attempts):
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout):
            if attempt == attempts - 1:
                raise
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status is None or status < 500 or attempt == attempts - 1:
                raise
        time.sleep(min(4.0, 0.5 * 2**attempt))


@contextlib.contextmanager
def _translated_errors(competition: str, doing: str) -> Iterator[list[str]]:
    """Client and network failures as one line that says what to do; every request made
    meanwhile has a timeout. Yields the URLs sent, which stay readable after a failure."""
    import requests

    try:
        with _bounded() as sent:
            yield sent
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise Refused(f"Kaggle refused the credentials (HTTP 401) while {doing}: "
                          "check the username and key, or create a new API token") from None
        if status == 403:
            raise Refused(
                f"Kaggle answered 403 Forbidden while {doing}: accept the competition rules at "
                f"https://www.kaggle.com/competitions/{competition}/rules, then retry") from None
        if status == 404:
            raise Refused(f"Kaggle has no competition '{competition}' (HTTP 404): "
                          f"check {option('competition')}") from None
        kind = Refused if status is not None and status < 500 else KaggleSaltError
        raise kind(f"Kaggle answered HTTP {status} while {doing}: the service may be down; "
                   "try again in a few minutes") from None
    except requests.Timeout:
        raise KaggleSaltError(f"Kaggle did not answer within {network_timeout():g} s while "
                              f"{doing}: check the network connection or proxy, then rerun "
                              f"the command (the wait is {TIMEOUT_ENV})") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
        reason = type(e).__name__
        raise KaggleSaltError(f"could not reach Kaggle while {doing} ({reason}): check the "
                              "network connection or proxy, then rerun the command") from None


# ----------------------------------------------------------------------------- download


def download(data_dir: str | os.PathLike, competition: str = COMPETITION, force: bool = False,
             progress: Progress | None = None, warn: Warn | None = None) -> str:
    """Download and unpack the competition into `data_dir`; returns what was done.

    The archive is streamed to a `.part` file beside the data folder (a rerun after a broken
    connection continues it), unpacked aside and moved in whole: an interruption never leaves
    half a layout.
    """
    data_dir = Path(data_dir)
    synthetic = data.is_synthetic(data_dir)
    if not force and data.layout_complete(data_dir) and not synthetic:
        return Message(f"{data_dir} already holds the competition files: nothing to do "
                       f"({option('force', True)} downloads them again)")
    credentials = find_credentials(warn)
    api = _api(credentials)
    work = data_dir.parent / f".{data_dir.name}.download"
    work.mkdir(parents=True, exist_ok=True)
    archive = work / f"{competition}.zip"
    from kagglesdk.competitions.types.competition_api_service import (
        ApiDownloadDataFilesRequest,
        ApiListDataFilesRequest,
    )

    with _translated_errors(competition, f"downloading {competition}"), \
            api.build_kaggle_client() as client:
        service = client.competitions.competition_api_client
        listing = ApiListDataFilesRequest()
        listing.competition_name = competition
        files = _retried(lambda: service.list_data_files(listing)).files
        request = ApiDownloadDataFilesRequest()
        request.competition_name = competition
        _fetch(_retried(lambda: service.download_data_files(request)), archive,
               client.http_client(), progress)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.", dir=data_dir.parent))
    try:
        try:
            root = unpack(archive, staging)
        except (zipfile.BadZipFile, EOFError):  # the archive, or a zip inside it
            archive.unlink(missing_ok=True)  # a rerun downloads it again
            raise KaggleSaltError(f"the archive of {competition} is damaged (not a whole zip "
                                  "file): run `kagglesalt download` again") from None
        if not data.layout_complete(root):
            missing = next(p for p in data.LAYOUT if not (root / p).exists())
            raise KaggleSaltError(f"the archive of {competition} has no {missing}: it is not "
                                  f"the TGS Salt layout; check {option('competition')}")
        write_json(root / SOURCE_MARKER, {"source": "kaggle", "competition": competition,
                                          "files": sorted(f.name for f in files),
                                          "downloaded": timestamps.now()})
        data.replace_folder(root, data_dir)
    except KaggleSaltError:  # a refused archive is not kept (it may be hundreds of MB)
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    replaced = " (replacing the synthetic data set)" if synthetic else ""
    return f"Downloaded {competition} into {data_dir}{replaced}"


def _fetch(response, archive: Path, http_client, progress: Progress | None) -> None:
    """Stream the redirected download to `archive`, continuing a matching `.part` file."""
    part = archive.with_suffix(".zip.part")
    meta = archive.with_suffix(".zip.part.json")
    total = int(response.headers.get("Content-Length") or 0) or None
    identity = {"url": response.url.split("?")[0], "total": total,
                "validator": response.headers.get("ETag") or response.headers.get(
                    "Last-Modified")}
    done = 0
    resumable = response.headers.get("Accept-Ranges") == "bytes" and identity["validator"]
    if part.exists() and resumable and _read_json(meta) == identity:
        done = part.stat().st_size
    if 0 < done < (total or 0):
        response.close()
        response = http_client._session.get(response.url, headers={"Range": f"bytes={done}-"},
                                            stream=True, timeout=60)
        response.raise_for_status()
        if response.status_code != 206:  # the server ignored the range: start over
            done = 0
    else:
        done = 0
    meta.write_text(json.dumps(identity))
    with open(part, "ab" if done else "wb") as out:
        if progress:
            progress(done, total)
        for chunk in response.iter_content(CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done < total:
        import requests

        raise requests.exceptions.ChunkedEncodingError(f"received {done} of {total} bytes")
    os.replace(part, archive)
    meta.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip, refusing any entry that would land outside `target`; a damaged zip
    raises zipfile.BadZipFile."""
    target = target.resolve()
    with zipfile.ZipFile(archive) as zf:
        for entry in zf.infolist():
            destination = (target / entry.filename).resolve()
            if destination != target and target not in destination.parents:
                raise KaggleSaltError(f"{archive.name} holds an entry '{entry.filename}' "
                                      "that would land outside the data folder: refusing "
                                      "to unpack it")
            if entry.external_attr >> 16 & 0o170000 == 0o120000:
                raise KaggleSaltError(f"{archive.name} holds a symbolic link "
                                      f"'{entry.filename}': refusing to unpack it")
        zf.extractall(target)


def unpack(archive: Path, staging: Path) -> Path:
    """Unpack the competition archive and its nested zips; return the layout's root."""
    _safe_extract(archive, staging)
    return unpack_nested(staging)


def unpack_nested(staging: Path) -> Path:
    """Unpack the zips in `staging` (train.zip, test.zip, and any inside them) in place;
    return the layout's root."""
    while nested := sorted(staging.rglob("*.zip")):
        for inner in nested:
            with zipfile.ZipFile(inner) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
            stem = inner.stem
            # train.zip may hold images/ and masks/, or train/images and train/masks.
            wrapped = names and all(n.startswith(f"{stem}/") for n in names)
            _safe_extract(inner, inner.parent if wrapped else inner.parent / stem)
            inner.unlink()
    roots = [p.parent for p in staging.rglob("train.csv")]
    return min(roots, key=lambda p: len(p.parts)) if roots else staging


# ----------------------------------------------------------------------------- submit


def submit(path: Path, message: str, competition: str = COMPETITION,
           warn: Warn | None = None) -> int:
    """Upload a submission file; return Kaggle's reference of it."""
    credentials = find_credentials(warn)
    api = _api(credentials)
    sent: list[str] = []
    try:
        with _translated_errors(competition, f"submitting {path.name}") as sent, _quiet():
            response = api.competition_submit(str(path), message, competition, quiet=True)
    except Refused:  # a definite no: nothing was recorded
        raise
    except KaggleSaltError as e:
        if any("CreateSubmission" in url for url in sent):
            raise OutcomeUnknown(f"{e}; the request that records the submission had been "
                                 "sent, so Kaggle may have it: `kagglesalt submissions` "
                                 "finds out") from None
        raise
    ref = int(getattr(response, "ref", 0) or 0)
    if not ref:
        detail = getattr(response, "message", "") or "no reason given"
        raise KaggleSaltError(f"Kaggle did not accept the upload of {path.name} ({detail}): "
                              "nothing was submitted; try again")
    return ref


def submissions(competition: str = COMPETITION, warn: Warn | None = None
                ) -> list[dict[str, Any]]:
    """The competition's submissions of this account, newest first."""
    credentials = find_credentials(warn)
    api = _api(credentials)
    with _translated_errors(competition, "listing submissions"), _quiet():
        rows = _retried(lambda: api.competition_submissions(competition)) or []
    out = []
    for s in rows:
        status = str(s.status).split(".")[-1].replace("SUBMISSION_STATUS_", "").lower()
        out.append({"ref": int(s.ref or 0), "date": s.date, "file": s.file_name or "",
                    "description": s.description or "", "status": status,
                    "public_score": s.public_score or "", "private_score": s.private_score or ""})
    return out


# ----------------------------------------------------------------------------- kernels

KERNEL_METADATA = "kernel-metadata.json"  # the client's name for a kernel folder's metadata


@dataclass(frozen=True)
class KernelVersion:
    """One pushed version of a kernel: every later call is pinned to it."""

    kernel: str  # owner/slug
    version: int
    url: str

    @property
    def pinned(self) -> str:
        return f"{self.kernel}/{self.version}"


def username(warn: Warn | None = None) -> str:
    """The account's user name, which a kernel's id starts with."""
    credentials = find_credentials(warn)
    name = credentials.username or os.environ.get("KAGGLE_USERNAME")
    if not name:
        raise KaggleSaltError(f"a kernel's id needs your Kaggle user name, which "
                              f"{credentials.source} does not hold: set KAGGLE_USERNAME")
    return name


def check_competition_access(competition: str = COMPETITION, warn: Warn | None = None) -> None:
    """The competition's files can be read by this account (its rules accepted): a kernel
    of an account that has not accepted them would be refused its data source."""
    api = _api(find_credentials(warn))
    from kagglesdk.competitions.types.competition_api_service import ApiListDataFilesRequest

    with _translated_errors(competition, f"reading {competition}'s files"), \
            api.build_kaggle_client() as client:
        listing = ApiListDataFilesRequest()
        listing.competition_name = competition
        _retried(lambda: client.competitions.competition_api_client.list_data_files(listing))


def gpu_quota(warn: Warn | None = None) -> tuple[float, float] | None:
    """(hours used, hours allowed) of this week's GPU quota; None where the server does
    not say (an older API, an account without a quota)."""
    api = _api(find_credentials(warn))
    try:
        with _translated_errors(COMPETITION, "reading the GPU quota"), _quiet():
            response = _retried(api.quota_view)
    except Refused:
        return None
    quota = getattr(response, "gpu_quota", None)
    if quota is None or quota.total_time_allowed is None:
        return None
    used = quota.time_used.total_seconds() if quota.time_used else 0.0
    return used / 3600, quota.total_time_allowed.total_seconds() / 3600


def push_kernel(folder: Path, machine: str, timeout_seconds: int | None,
                competition: str = COMPETITION, warn: Warn | None = None) -> KernelVersion:
    """Push the kernel in `folder` (its metadata and script) and start it: a new version.
    Never retried: a second push would be a second version, and a second session."""
    api = _api(find_credentials(warn))
    pushed = json.loads((folder / KERNEL_METADATA).read_text())["id"]
    sent: list[str] = []
    try:
        with _translated_errors(competition, "pushing the kernel") as sent, _quiet():
            response = api.kernels_push(str(folder), timeout=str(timeout_seconds)
                                        if timeout_seconds else None, acc=machine)
    except ValueError as e:  # the client's own checks of the metadata
        raise KaggleSaltError(f"the kaggle client refused the kernel: {e}") from None
    except Refused:  # a definite no: nothing was pushed
        raise
    except KaggleSaltError as e:
        if any("SaveKernel" in url for url in sent):
            raise OutcomeUnknown(f"{e}; the push had been sent, so Kaggle may run it: look at "
                                 f"https://www.kaggle.com/code/{pushed} before rerunning (a "
                                 "rerun pushes a new version)") from None
        raise
    if response is None or response.error:
        detail = getattr(response, "error", None) or "no answer"
        raise KaggleSaltError(f"Kaggle refused the kernel ({detail}): nothing runs there")
    ref = (response.ref or "").strip("/").removeprefix("code/")
    if ref.count("/") != 1:  # the id pushed, owner/slug, where the answer names it otherwise
        ref = pushed
    if not response.version_number:
        raise KaggleSaltError(f"Kaggle's answer to the push of {ref} names no version: see "
                              f"{response.url or 'your kernels on kaggle.com'}, and rerun "
                              "the command once it shows there")
    return KernelVersion(ref, int(response.version_number), response.url or "")


def kernel_status(version: KernelVersion, warn: Warn | None = None) -> tuple[str, str]:
    """The pinned version's status (queued, running, complete, error, ...) and failure
    message ("" when none)."""
    api = _api(find_credentials(warn))
    try:
        with _translated_errors(COMPETITION, f"asking the status of {version.pinned}"), \
                _quiet():
            response = _retried(lambda: api.kernels_status(version.pinned))
    except ValueError as e:  # the client's word for a 401/403 on a kernel
        raise KaggleSaltError(f"cannot read kernel {version.pinned}: {e}") from None
    status = str(response.status).split(".")[-1].lower()
    return status, response.failure_message or ""


def kernel_log(version: KernelVersion, warn: Warn | None = None) -> str:
    """The pinned version's log as far as Kaggle has it (lines of JSON records on Kaggle,
    plain text elsewhere; `log_lines` reads both)."""
    api = _api(find_credentials(warn))
    try:
        with _translated_errors(COMPETITION, f"reading the log of {version.pinned}"), \
                _quiet():
            return _retried(lambda: api.kernels_logs(version.pinned)) or ""
    except ValueError as e:
        raise KaggleSaltError(f"cannot read kernel {version.pinned}: {e}") from None


def log_lines(log: str) -> list[str]:
    """The text lines of a kernel log: Kaggle's is a JSON list of {"data": ...} records."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        records = json.loads(log)
        if isinstance(records, list):
            log = "".join(str(r.get("data", "")) for r in records if isinstance(r, dict))
    return [line for line in log.splitlines() if line.strip()]


def kernel_output(version: KernelVersion, target: Path, warn: Warn | None = None) -> None:
    """Download every output file of the pinned version into `target` (every page)."""
    api = _api(find_credentials(warn))
    try:
        with _translated_errors(COMPETITION, f"downloading the output of {version.pinned}"), \
                _quiet():
            _retried(lambda: api.kernels_output(version.pinned, str(target), force=True,
                                                quiet=True))
    except ValueError as e:
        raise KaggleSaltError(f"cannot read the output of kernel {version.pinned}: {e}") \
            from None
