"""A Kaggle-compatible HTTP server on 127.0.0.1 for the real `kaggle` client to talk to.

The client is pointed at it with KAGGLE_API_ENVIRONMENT=LOCALHOST (which makes it call
http://localhost/api/v1/...) and HTTP_PROXY=http://127.0.0.1:<port>, so every request of
the client, the download redirect and the upload PUT included, arrives here in proxy form.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

SERVICE = "/api/v1/competitions.CompetitionApiService/"


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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKaggle:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def rpc_calls(self) -> list[str]:
        return [p[len(SERVICE):] for _, p in self.requests if p.startswith(SERVICE)]

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
                if not path.startswith(SERVICE):
                    return self._json(404, {"code": 404, "message": "not found"})
                method = path[len(SERVICE):]
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

            def do_GET(self):
                path = self._path()
                fake.requests.append(("GET", path))
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

            def do_PUT(self):
                path = self._path()
                fake.requests.append(("PUT", path))
                body = self._body()
                token = path.rsplit("/", 1)[-1]
                if fake.upload_status in (200, 201) and token in fake.uploads:
                    fake.uploads[token] = body
                self._json(fake.upload_status, {})

        return Handler
