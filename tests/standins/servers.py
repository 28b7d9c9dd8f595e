"""Local stand-ins of the online sources, on 127.0.0.1 only, with faults on demand.

* :class:`FileServer` serves a dict of paths to bytes, as raw.githubusercontent.com
  serves CrowS-Pairs and Brown;
* :class:`HubServer` adds what ``huggingface_hub`` asks of the Hugging Face hub (repo
  info, file trees, ``resolve`` URLs with their ETag and commit headers), for a dataset
  repo in the layout of ``Yelp/yelp_review_full`` and a model repo written by
  ``save_pretrained``; point ``HF_ENDPOINT`` at :attr:`Server.url`;
* :class:`Proxy` forwards plain-HTTP requests and tunnels ``CONNECT``, resolving every
  host name to 127.0.0.1, so a made-up host is reachable through it and only through it.

A fault applies to the paths that start with ``fault_prefix`` (all paths by default):
``"truncated"`` sends half the body after announcing all of it and hangs up, ``"hang"``
never answers, ``"404"`` answers Not Found, and ``None`` serves normally. A process
under test can switch faults itself with a GET of ``/_standin/fault/<name>``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import select
import socket
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FileServer", "HubServer", "Proxy", "repo_files", "self_signed_certificate"]

FAULTS = (None, "truncated", "hang", "404")
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the one revision of every stand-in repo


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server:
    """An HTTP server on 127.0.0.1 in a daemon thread; use it as a context manager."""

    def __init__(
        self,
        fault: str | None = None,
        fault_prefix: str = "/",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.fault = fault
        self.fault_prefix = fault_prefix
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        self._server = _ThreadingServer(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        if tls is not None:  # (certificate, key) files, e.g. from self_signed_certificate()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()

    def set_fault(self, fault: str | None, prefix: str = "/") -> None:
        """Switch to another fault (see the module docstring) for paths starting with prefix."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        self.fault, self.fault_prefix = fault, prefix

    def respond(self, handler: http.server.BaseHTTPRequestHandler, path: str) -> None:
        """Answer one request that no fault intercepted; subclasses route here."""
        raise NotImplementedError

    def _handler_class(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _any(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/_standin/fault/"):  # ?prefix=/x limits it to paths under /x
                    name = path.rsplit("/", 1)[1]
                    prefix = parse_qs(urlsplit(self.path).query).get("prefix", ["/"])[0]
                    server.set_fault(None if name == "none" else name, prefix)
                    return send(self, 200, b"ok")
                server.requests.append((self.command, self.path))
                if server.fault is not None and path.startswith(server.fault_prefix):
                    if server.fault == "hang":
                        server.stopping.wait()
                        self.close_connection = True
                        return None
                    if server.fault == "404":
                        return send(self, 404, b"Not Found", {"X-Error-Code": "RepoNotFound"})
                server.respond(self, path)
                return None

            do_GET = do_HEAD = do_POST = _any

        return Handler


def send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    server: Server | None = None,
) -> None:
    """Send a response; under the ``truncated`` fault, only half of the announced body."""
    if handler.command == "POST":
        length = int(handler.headers.get("Content-Length") or 0)
        handler.rfile.read(length)
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command == "HEAD":
        return
    if server is not None and server.fault == "truncated" and len(body) > 1:
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return
    handler.wfile.write(body)


class FileServer(Server):
    """Serves fixed files by path: ``FileServer({"/data/x.csv": b"..."})``."""

    def __init__(self, files: dict[str, bytes], **options) -> None:
        super().__init__(**options)
        self.files = dict(files)

    def respond(self, handler, path: str) -> None:
        if path not in self.files:
            return send(handler, 404, b"Not Found")
        body = self.files[path]
        return send(handler, 200, body, {"Content-Type": "application/octet-stream"}, server=self)


def repo_files(folder: str | Path) -> dict[str, bytes]:
    """Every file below ``folder`` by its relative path, as a hub repo holds them."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class HubServer(Server):
    """The parts of the Hugging Face hub that ``datasets`` and ``transformers`` use.

    ``repos`` maps ``("dataset" | "model", "owner/name")`` to that repo's files.
    """

    def __init__(self, repos: dict[tuple[str, str], dict[str, bytes]], **options) -> None:
        super().__init__(**options)
        self.repos = repos

    def _find(self, kind: str, rest: str) -> tuple[str, str] | None:
        """Split ``owner/name/<tail>`` into a known repo id and the tail."""
        for repo_kind, repo_id in self.repos:
            if repo_kind == kind and (rest == repo_id or rest.startswith(repo_id + "/")):
                return repo_id, rest[len(repo_id) + 1 :]
        return None

    def respond(self, handler, path: str) -> None:
        path = unquote(path)
        if path == "/":
            return send(handler, 200, b"hub stand-in")
        if path.startswith("/api/"):
            kind_plural, _, rest = path[len("/api/") :].partition("/")
            kind = {"datasets": "dataset", "models": "model"}.get(kind_plural)
            found = self._find(kind, rest) if kind else None
            if found is None:
                return _not_found(handler)
            return self._api(handler, kind, *found)
        kind, rest = ("dataset", path[len("/datasets/") :])
        if not path.startswith("/datasets/"):
            kind, rest = "model", path[1:]
        found = self._find(kind, rest)
        if found is None or not found[1].startswith("resolve/"):
            return _not_found(handler)
        repo_id, tail = found
        revision, _, filename = tail[len("resolve/") :].partition("/")
        files = self.repos[(kind, repo_id)]
        if revision not in ("main", COMMIT) or filename not in files:
            return send(handler, 404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
        body = files[filename]
        etag = hashlib.sha256(body).hexdigest()
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": COMMIT,
            "Content-Type": "application/octet-stream",
        }
        return send(handler, 200, body, headers, server=self)

    def _api(self, handler, kind: str, repo_id: str, tail: str) -> None:
        files = self.repos[(kind, repo_id)]
        if tail.startswith("tree/"):
            folder = tail[len("tree/") :].partition("/")[2]
            recursive = "recursive=true" in handler.path.lower()
            return _json(handler, _tree(files, folder.strip("/"), recursive))
        if tail.startswith("paths-info/"):
            wanted = _posted_paths(handler)
            entries = [e for e in _tree(files, "", True) if e["path"] in wanted]
            return _json(handler, entries, read_body=False)
        if tail in ("", "revision/main", f"revision/{COMMIT}") or tail.startswith("revision/"):
            info = {
                "id": repo_id,
                "_id": repo_id,
                "sha": COMMIT,
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2024-01-01T00:00:00.000Z",
                "siblings": [
                    {"rfilename": name, "size": len(body)} for name, body in files.items()
                ],
            }
            return _json(handler, info)
        return _not_found(handler)


def _posted_paths(handler) -> set[str]:
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length).decode()
    if handler.headers.get("Content-Type", "").startswith("application/json"):
        return set(json.loads(body).get("paths", []))
    return set(parse_qs(body).get("paths", []))


def _tree(files: dict[str, bytes], folder: str, recursive: bool) -> list[dict]:
    entries: dict[str, dict] = {}
    prefix = f"{folder}/" if folder else ""
    for name, body in files.items():
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix) :].split("/")
        for depth in range(1, len(parts)):  # the folders on the way
            if depth > 1 and not recursive:
                break
            path = prefix + "/".join(parts[:depth])
            entries[path] = {"type": "directory", "path": path, "oid": COMMIT}
        if len(parts) == 1 or recursive:
            oid = hashlib.sha1(body).hexdigest()
            entry = {"type": "file", "path": name, "size": len(body), "oid": oid}
            if name.endswith((".parquet", ".safetensors")):
                entry["lfs"] = {
                    "oid": hashlib.sha256(body).hexdigest(),
                    "size": len(body),
                    "pointerSize": 134,
                }
            entries[name] = entry
    return list(entries.values())


def _json(handler, value, read_body: bool = True) -> None:
    body = json.dumps(value).encode()
    if not read_body and handler.command == "POST":
        handler.command = "GET"  # the body was read already
    send(handler, 200, body, {"Content-Type": "application/json"})


def _not_found(handler) -> None:
    send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})


class Proxy:
    """A forwarding and ``CONNECT`` proxy on 127.0.0.1 that sends every host to 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, version = request_line.split(" ")
            self.requests.append(request_line)
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                with socket.create_connection(("127.0.0.1", port)) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(client, upstream)
                return
            # Absolute-form request: http://host:port/path -> origin-form to 127.0.0.1:port.
            parts = urlsplit(target)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            rest = head.split(b"\r\n", 1)[1]
            with socket.create_connection(("127.0.0.1", parts.port or 80)) as upstream:
                upstream.sendall(f"{method} {path} {version}\r\n".encode() + rest)
                _pipe(client, upstream)


def _pipe(first: socket.socket, second: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [first, second]
    while True:
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (second if source is first else first).sendall(data)


def self_signed_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A certificate for ``host`` and its key, made with the ``openssl`` command."""
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(certificate), "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName=DNS:{host}"),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key
