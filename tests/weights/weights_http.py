"""A local HTTP server (127.0.0.1, a thread) for the weights-manager tests."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    """What the handler serves and what it saw."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    cut_once: bool = True
    # "slow" (before the headers) and "stall" (after half the body) wait for this event, at most
    # stall_s: a client that ignores its timeout gets the whole file and no error
    release: threading.Event = field(default_factory=threading.Event)
    stall_s: float = 30.0


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, data: bytes, start: int = 0, cut: bool = False, stall: bool = False) -> None:
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.state.release.wait(self.state.stall_s)
            self.wfile.write(body[len(body) // 2 :])
            return
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.state.requests.append((self.path, rng))
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        name = self.path.rsplit("/", 1)[-1]
        if name.startswith(("good", "wrong")) or self.path.startswith("/mirror/"):
            self._send(PAYLOAD, start)
        elif name.startswith("norange"):  # a server that ignores Range: always the whole file
            self._send(PAYLOAD, 0, cut=self.state.cut_once and not rng)
        elif name.startswith("cut"):
            cut = self.state.cut_once and not start
            self._send(PAYLOAD, start, cut=cut)
        elif name.startswith("slow"):
            self.state.release.wait(self.state.stall_s)
            self._send(PAYLOAD, start)
        elif name.startswith("stall"):
            self._send(PAYLOAD, start, stall=True)
        else:
            self.send_error(404, "Not Found")


@dataclass
class Zoo:
    """A served test zoo: base URL, server state and the manifest path."""

    url: str
    state: ServerState
    manifest: Path
    home: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(tmp_path: Path) -> Iterator[Zoo]:
    """Start the server and write a manifest whose entries exercise every server case."""
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    dead = f"http://127.0.0.1:{_free_port()}"
    common = {"kind": "detector", "arch": "rtmdet-tiny", "license": "test", "source": "test"}
    models = {
        "good": {**common, "file": "good.bin", "url": f"{base}/good.bin", "sha256": SHA},
        "good-prefix": {**common, "file": "good2.bin", "url": f"{base}/good2.bin", "sha256": SHA[:8]},
        "wrong": {**common, "file": "wrong.bin", "url": f"{base}/wrong.bin", "sha256": "0" * 64},
        "missing": {**common, "file": "missing.bin", "url": f"{base}/missing.bin", "sha256": SHA},
        "cut": {**common, "file": "cut.bin", "url": f"{base}/cut.bin", "sha256": SHA},
        "norange": {**common, "file": "norange.bin", "url": f"{base}/norange.bin", "sha256": SHA},
        "slow": {**common, "file": "slow.bin", "url": f"{base}/slow.bin", "sha256": SHA},
        "stall": {**common, "file": "stall.bin", "url": f"{base}/stall.bin", "sha256": SHA},
        "offline": {**common, "file": "offline.bin", "url": f"{dead}/offline.bin", "sha256": SHA},
        "by-hand": {
            **common,
            "file": "by-hand.pth",
            "url": "https://example.org/release",
            "manual": True,
            "note": "get it from the release page",
        },
    }
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")
    try:
        yield Zoo(base, state, manifest, tmp_path / "home")
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
