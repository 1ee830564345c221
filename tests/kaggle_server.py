"""A Kaggle-compatible HTTP server on 127.0.0.1 for the real `kaggle` client to talk to.

The client is pointed at it with KAGGLE_API_ENVIRONMENT=LOCALHOST (which makes it call
http://localhost/api/v1/...) and HTTP_PROXY=http://127.0.0.1:<port>, so every request of
the client, the download redirect and the upload PUT included, arrives here in proxy form.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

SERVICE = "/api/v1/competitions.CompetitionApiService/"
KERNELS = "/api/v1/kernels.KernelsApiService/"
OUTPUT = "/kernel-output/"  # where a kernel's output files are fetched, without credentials


def competition_zip(data_dir: Path, escape: bool = False) -> bytes:
    """The competition archive as Kaggle serves it: CSVs plus nested train.zip, test.zip."""

    def folder_zip(pairs: list[tuple[Path, str]]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            for path, name in pairs:
                zf.write(path, name)
        return buffer.getvalue()

    train = [(p, f"{kind}/{p.name}") for kind in ("images", "masks")
             for p in sorted((data_dir / "train" / kind).glob("*.png"))]
    test = [(p, f"images/{p.name}") for p in sorted((data_dir / "test" / "images").glob("*.png"))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("train.csv", "depths.csv", "sample_submission.csv"):
            zf.write(data_dir / name, name)
        zf.writestr("train.zip", folder_zip(train))
        zf.writestr("test.zip", folder_zip(test))
        if escape:
            zf.writestr("../escaped.txt", "outside")
    return buffer.getvalue()


class FakeKaggle:
    def __init__(self, archive: bytes, competition: str, username: str = "alice",
                 key: str = "s3cret-key", token: str = "token-123"):
        self.archive, self.competition = archive, competition
        self.username, self.key, self.token = username, key, token
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[str] = []  # Range headers of download requests
        self.status: dict[str, int] = {}  # RPC method or "download" -> forced HTTP status
        self.drop_after: int | None = None  # close the download after this many bytes
        self.upload_status = 200
        self.uploads: dict[str, bytes] = {}
        self.names: dict[str, str] = {}  # upload token -> the file name the client gave
        self.submitted: list[dict] = []
        # RPC method -> HTTP status answered after the call has done its work (a proxy that
        # loses the answer): the client sees a failure of something that happened
        self.fail_after: dict[str, int] = {}
        # RPC methods (or "download") whose connection is accepted and never answered, for
        # at most `stall_seconds`; `release` ends the wait
        self.stall: set[str] = set()
        self.stall_seconds = 20.0
        self.release = threading.Event()
        self.etag = hashlib.md5(archive).hexdigest()
        self.kernels = Kernels(competition)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKaggle:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kernels.stop()
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def rpc_calls(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for _, p in self.requests
                if p.startswith((SERVICE, KERNELS))]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _path(self) -> str:
                return urlsplit(self.path).path

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                if header.startswith("Bearer "):
                    return header[7:] == fake.token
                if header.startswith("Basic "):
                    user, _, key = base64.b64decode(header[6:]).decode().partition(":")
                    return (user, key) == (fake.username, fake.key)
                return False

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self):
                path = self._path()
                fake.requests.append(("POST", path))
                body = self._body()
                if not path.startswith((SERVICE, KERNELS)):
                    return self._json(404, {"code": 404, "message": "not found"})
                method = path.rsplit("/", 1)[-1]
                if method in fake.stall:
                    fake.release.wait(fake.stall_seconds)
                    self.close_connection = True
                    return None
                if not self._authorised():
                    return self._json(401, {"code": 401, "message": "Unauthenticated"})
                if method in fake.status:
                    code = fake.status[method]
                    return self._json(code, {"code": code, "message": f"forced {code}"})
                request = json.loads(body or b"{}")
                if request.get("competitionName") not in (None, fake.competition):
                    return self._json(404, {"code": 404, "message": "no such competition"})
                if method in fake.fail_after:
                    answer, self._json = self._json, lambda status, body: None
                    getattr(self, f"rpc_{method}")(request)  # done, and its answer lost
                    code = fake.fail_after[method]
                    return answer(code, {"code": code, "message": "Bad Gateway"})
                return getattr(self, f"rpc_{method}")(request)

            def rpc_ListDataFiles(self, request):
                self._json(200, {"files": [{"ref": "train.csv", "name": "train.csv",
                                            "totalBytes": 1000}]})

            def rpc_DownloadDataFiles(self, request):
                self.send_response(302)
                self.send_header("Location", f"http://localhost/files/{fake.competition}.zip")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def rpc_StartSubmissionUpload(self, request):
                token = f"blob-{len(fake.uploads) + 1}"
                fake.uploads[token] = b""
                fake.names[token] = request.get("fileName", "")
                self._json(200, {"token": token, "createUrl": f"http://localhost/upload/{token}"})

            def rpc_CreateSubmission(self, request):
                token = request.get("blobFileTokens")
                if not fake.uploads.get(token):
                    return self._json(200, {"ref": 0, "message": "upload not found"})
                ref = 1000 + len(fake.submitted)
                fake.submitted.append({"ref": ref, "description": request.get(
                    "submissionDescription", ""), "bytes": fake.uploads[token],
                    "file": fake.names.get(token, "")})
                self._json(200, {"ref": ref, "message": "Successfully submitted"})

            def rpc_ListSubmissions(self, request):
                rows = [{"ref": s["ref"], "date": "2026-11-26T10:00:00Z",
                         "description": s["description"], "fileName": s["file"],
                         "status": "COMPLETE", "publicScore": "0.80100",
                         "privateScore": "0.79900"} for s in reversed(fake.submitted)]
                self._json(200, {"submissions": rows})

            # The kernels service: a pushed script runs here, in a subprocess.

            def rpc_SaveKernel(self, request):
                self._json(200, fake.kernels.save(request))

            def rpc_GetKernelSessionStatus(self, request):
                session = fake.kernels.find(request)
                if session is None:
                    return self._json(404, {"code": 404, "message": "no such kernel"})
                self._json(200, session.status())

            def rpc_ListKernelSessionOutput(self, request):
                session = fake.kernels.find(request)
                if session is None:
                    return self._json(404, {"code": 404, "message": "no such kernel"})
                self._json(200, session.output(request))

            def rpc_GetAcceleratorQuotaStatistics(self, request):
                quota = fake.kernels.gpu_quota_hours
                self._json(200, {"quotaRefreshTime": "2026-12-05T00:00:00Z", "gpuQuota": {
                    "timeUsed": f"{quota[0] * 3600:.0f}s",
                    "totalTimeAllowed": f"{quota[1] * 3600:.0f}s"}})

            def do_GET(self):
                path = self._path()
                fake.requests.append(("GET", path))
                if path.startswith(OUTPUT):
                    return self._output_file(path[len(OUTPUT):])
                if path != f"/files/{fake.competition}.zip":
                    return self._json(404, {"code": 404, "message": "not found"})
                if "download" in fake.status:
                    code = fake.status["download"]
                    return self._json(code, {"code": code, "message": f"forced {code}"})
                data, start = fake.archive, 0
                ranged = self.headers.get("Range", "")
                fake.ranges.append(ranged)
                if ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", fake.etag)
                self.end_headers()
                payload = data[start:]
                if fake.drop_after is not None:
                    self.wfile.write(payload[: fake.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(payload)

            def _output_file(self, where: str):
                owner, slug, version, name = where.split("/", 3)
                session = fake.kernels.sessions.get((f"{owner}/{slug}", int(version)))
                path = session.working / name if session else None
                if path is None or not path.is_file():
                    return self._json(404, {"code": 404, "message": "no such file"})
                data = path.read_bytes()
                if name in fake.kernels.truncated:  # cut short on Kaggle's side
                    data = data[: len(data) // 2]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                path = self._path()
                fake.requests.append(("PUT", path))
                body = self._body()
                token = path.rsplit("/", 1)[-1]
                if fake.upload_status in (200, 201) and token in fake.uploads:
                    fake.uploads[token] = body
                self._json(fake.upload_status, {})

        return Handler


def machine_with_gpus(folder: Path, gpus: tuple[str, ...], path: str) -> dict[str, str]:
    """The environment of a machine with `gpus`, as far as a CPU-only one can play it:
    `nvidia-smi -L` lists them, and Ray counts them (it hands each task its own, in
    CUDA_VISIBLE_DEVICES); the training itself stays on the CPU."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    listed = "".join(f"GPU {i}: {name} (UUID: GPU-0000000{i})\\n" for i, name in enumerate(gpus))
    smi.write_text(f"#!/bin/sh\nprintf '{listed}'\n")
    smi.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{path}",
            "RAY_OVERRIDE_RESOURCES": json.dumps({"GPU": len(gpus)})}


class Session:
    """One pushed version, its script run in a subprocess with Kaggle's folders mapped to
    temporary ones (`KAGGLESALT_KAGGLE_ROOT`, which only this server sets)."""

    def __init__(self, root: Path, script: str, timeout: float | None, competition: str,
                 data_dir: Path, mount: str, sources: dict[str, Path] | None = None,
                 cut_at_fold: int | None = None, gpus: tuple[str, ...] = (),
                 tmp_root: str | None = None):
        self.root, self.timeout, self.cut_at_fold = root, timeout, cut_at_fold
        self.gpus, self.tmp_root = gpus, tmp_root
        self.working = root / "working"
        self.working.mkdir(parents=True)
        source = root / "input" / competition
        if mount == "zips":  # train.zip and test.zip beside the CSVs, as some mounts have
            source.mkdir(parents=True)
            with zipfile.ZipFile(io.BytesIO(competition_zip(data_dir))) as zf:
                zf.extractall(source)
        else:
            shutil.copytree(data_dir, source, ignore=shutil.ignore_patterns(".*"))
        for slug, output in (sources or {}).items():  # a kernel source: its output
            shutil.copytree(output, root / "input" / slug)
        self.script = root / "script.py"
        self.script.write_text(script)
        self.log = root / "log.txt"
        self.state, self.failure = "QUEUED", None
        self.process: subprocess.Popen | None = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
        env["KAGGLESALT_KAGGLE_ROOT"] = str(self.root)
        # The session's own temporary folder, gone with the server (a killed session cleans
        # nothing up); short, as Kaggle's /tmp is: Ray puts its sockets there.
        env["TMPDIR"] = tempfile.mkdtemp(prefix="s", dir=self.tmp_root)
        if self.gpus:
            env.update(machine_with_gpus(self.root / "bin", self.gpus, env.get("PATH", "")))
        with open(self.log, "w") as log:
            # A session of its own: stopping it stops everything it started, as Kaggle
            # stops a kernel's whole machine.
            self.process = subprocess.Popen([sys.executable, str(self.script)], stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.working, env=env,
                                            start_new_session=True)
            self.state = "RUNNING"
            started = time.monotonic()
            while (code := self.process.poll()) is None:
                late = self.timeout is not None and time.monotonic() - started > self.timeout
                if late or self._at_the_cut():  # Kaggle stops a session at its limit
                    self.stop()
                    self.process.wait()
                    self.state = "ERROR"
                    self.failure = "The session ran past its time limit and was stopped"
                    return
                time.sleep(0.05)
        self.state = "COMPLETE" if code == 0 else "ERROR"
        if code:
            self.failure = f"The script exited with status {code}"

    def _at_the_cut(self) -> bool:
        """The limit, placed where a test wants it: as fold `cut_at_fold` starts (said in
        the log once every earlier fold is written and in the manifest)."""
        if self.cut_at_fold is None or not self.log.exists():
            return False
        return any(line.startswith(f"kagglesalt: fold {self.cut_at_fold}/")
                   for line in self.log.read_text().splitlines())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def status(self) -> dict:
        return {"status": self.state, "failureMessage": self.failure}

    def output(self, request: dict) -> dict:
        files = sorted(p.relative_to(self.working).as_posix()
                       for p in self.working.rglob("*") if p.is_file())
        start = int(request.get("pageToken") or 0)
        size = int(request.get("pageSize") or 20)
        owner_slug, version = self.key
        page = [{"fileName": name, "url": f"http://localhost{OUTPUT}{owner_slug}/{version}/"
                 f"{name}"} for name in files[start:start + size]]
        answer: dict = {"files": page}
        if start + size < len(files):
            answer["nextPageToken"] = str(start + size)
        if not start:  # Kaggle's log: a JSON list of records
            lines = self.log.read_text().splitlines(keepends=True) if self.log.exists() else []
            answer["log"] = json.dumps([{"stream_name": "stdout", "time": 0.0, "data": line}
                                        for line in lines])
        return answer


class Kernels:
    """The kernels service's state: sessions by (owner/slug, version)."""

    def __init__(self, competition: str):
        self.competition = competition
        self.data_dir: Path | None = None  # the competition a kernel sees as its input
        self.mount = "folders"  # or "zips"
        self.sessions: dict[tuple[str, int], Session] = {}
        self.saved: list[dict] = []  # every SaveKernel request
        self.gpu_quota_hours = (2.0, 30.0)
        self.truncated: set[str] = set()  # output files served cut short
        self.cut_at_fold: int | None = None  # the session limit strikes as this fold starts
        self.refusal: str | None = None  # an error SaveKernel answers with (HTTP 200)
        self.gpus: tuple[str, ...] = ()  # the GPUs a session's machine shows (none: a CPU)
        self.folder = Path(tempfile.mkdtemp(prefix="fake-kaggle-kernels-"))
        self.tmp = tempfile.mkdtemp(prefix="fkk")  # the sessions' TMPDIRs

    def save(self, request: dict) -> dict:
        self.saved.append(request)
        slug = request.get("slug") or ""
        text = request.get("text") or ""
        if self.refusal:
            return {"error": self.refusal}
        if len(text.encode()) > 1_000_000:
            return {"error": "Kernel source exceeds the maximum size of 1 MB"}
        if self.competition not in (request.get("competitionDataSources") or []):
            return {"error": f"the kernel has no data source {self.competition}"}
        version = 1 + sum(1 for key in self.sessions if key[0] == slug)
        timeout = request.get("sessionTimeoutSeconds")
        assert self.data_dir is not None, "the test gives the server its competition data"
        sources = {}
        for source in request.get("kernelDataSources") or []:
            latest = self.find({"userName": source.split("/")[0],
                                "kernelSlug": source.split("/")[-1]})
            if latest is None:
                return {"error": f"no kernel {source} to use as a data source"}
            sources[source.split("/")[-1]] = latest.working
        session = Session(self.folder / slug.replace("/", "_") / str(version), text,
                          float(timeout) if timeout else None, self.competition,
                          self.data_dir, self.mount, sources, self.cut_at_fold, self.gpus,
                          self.tmp)
        session.key = (slug, version)
        self.sessions[(slug, version)] = session
        return {"ref": slug, "url": f"https://www.kaggle.com/code/{slug}",
                "versionNumber": version, "kernelId": 7}

    def find(self, request: dict) -> Session | None:
        slug = f"{request.get('userName')}/{request.get('kernelSlug')}"
        label = request.get("versionLabel") or ""
        if label.startswith("v") and label[1:].isdigit():
            return self.sessions.get((slug, int(label[1:])))
        versions = [key for key in self.sessions if key[0] == slug]
        return self.sessions[max(versions)] if versions else None

    def wait(self, seconds: float = 120) -> None:
        """Until every session has ended (a test that stops following)."""
        deadline = time.monotonic() + seconds
        while any(s.state in ("QUEUED", "RUNNING") for s in self.sessions.values()):
            assert time.monotonic() < deadline, "a kernel session did not end"
            time.sleep(0.2)

    def stop(self) -> None:
        for session in self.sessions.values():
            session.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
