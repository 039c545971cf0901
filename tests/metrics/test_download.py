"""Metric network downloads against a local HTTP server on 127.0.0.1 serving a stand-in
TorchScript Inception: pinned hash good and bad, a transfer cut short and resumed, trust on
first use, a file that is not the network, and offline mode."""
from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
import torch

from tri3d.metrics import download
from tri3d.metrics.detector import INCEPTION_FILE, load_detector


class InceptionStandIn(torch.nn.Module):
    """The call signature of inception-2015-12-05.pt with its output sizes (2048 / 1008)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 2048, bias=False)
        self.cls = torch.nn.Linear(2048, 1008, bias=False)

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False):
        f = self.proj(x.float().mean(dim=(2, 3)) / 255)
        if return_features:
            return f
        return torch.softmax(self.cls(f), dim=1)


class Server:
    """Serves ``payload`` at /<name>, honouring ``Range``; ``cut_at`` ends a full-length
    response after that many bytes (the announced length stays the whole file)."""

    def __init__(self, payload: bytes):
        self.payload, self.cut_at, self.ranges = payload, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                body = server.payload[start:]
                self.send_response(206 if header else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_at is not None and not header:
                    self.wfile.write(body[: server.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{INCEPTION_FILE}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stand_in(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("stand_in") / "stand_in.pt"
    torch.jit.script(InceptionStandIn()).save(str(path))
    return path.read_bytes()


@pytest.fixture
def serve(monkeypatch):
    servers = []
    monkeypatch.delenv("TRI3D_OFFLINE", raising=False)
    monkeypatch.delenv("TRI3D_DETECTOR", raising=False)

    def start(payload: bytes, sha256: str | None) -> Server:
        server = Server(payload)
        servers.append(server)
        monkeypatch.setitem(download.METRIC_FILES, INCEPTION_FILE,
                            download.MetricFile(url=server.url, check=download.check_inception, sha256=sha256))
        return server

    yield start
    for server in servers:
        server.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_good_hash_is_fetched_once_and_used(stand_in, serve, tmp_path):
    server = serve(stand_in, _sha(stand_in))
    detector = load_detector(None, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / INCEPTION_FILE).read_bytes() == stand_in
    assert detector.features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)).shape == (1, 2048)
    load_detector(None, cache_dir=tmp_path / "cache")
    assert len(server.ranges) == 1  # the second call used the cache
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")) == [
        INCEPTION_FILE, INCEPTION_FILE + ".sha256"]


def test_bad_hash_is_refused_and_nothing_stays(stand_in, serve, tmp_path):
    serve(stand_in, "0" * 64)
    with pytest.raises(ValueError, match="differs from the published 0000"):
        download.metric_file(INCEPTION_FILE, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_a_transfer_cut_short_fails_then_resumes(stand_in, serve, tmp_path):
    server = serve(stand_in, _sha(stand_in))
    server.cut_at = len(stand_in) // 3
    with pytest.raises(OSError, match="run again to resume"):
        download.metric_file(INCEPTION_FILE, tmp_path)
    assert not (tmp_path / INCEPTION_FILE).exists()
    assert (tmp_path / f".{INCEPTION_FILE}.partial").stat().st_size == server.cut_at
    server.cut_at = None
    path = download.metric_file(INCEPTION_FILE, tmp_path)
    assert server.ranges[-1] == f"bytes={len(stand_in) // 3}-"  # only the rest was asked for
    assert path.read_bytes() == stand_in and not (tmp_path / f".{INCEPTION_FILE}.partial").exists()


def test_unpinned_file_is_checked_recorded_and_a_later_change_refused(stand_in, serve, tmp_path):
    serve(stand_in, None)
    path = download.metric_file(INCEPTION_FILE, tmp_path)
    assert (tmp_path / (INCEPTION_FILE + ".sha256")).read_text().strip() == _sha(stand_in)
    path.write_bytes(stand_in + b"tampered")
    with pytest.raises(ValueError, match="changed since it was first used"):
        download.metric_file(INCEPTION_FILE, tmp_path)


def test_a_file_that_is_not_the_network_is_refused(serve, tmp_path):
    serve(b"<html>not a model</html>", None)
    with pytest.raises(ValueError, match="not the expected network"):
        download.metric_file(INCEPTION_FILE, tmp_path)
    assert not (tmp_path / INCEPTION_FILE).exists() and not (tmp_path / f".{INCEPTION_FILE}.partial").exists()


def test_wrong_output_sizes_are_refused(serve, tmp_path):
    path = tmp_path / "small.pt"

    class Small(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False):
            return torch.softmax(x.float().mean(dim=(2, 3)), dim=1)

    torch.jit.script(Small()).save(str(path))
    serve(path.read_bytes(), None)
    with pytest.raises(ValueError, match=r"expected \[2, 2048\] and \[2, 1008\]"):
        download.metric_file(INCEPTION_FILE, tmp_path / "cache")


def test_offline_mode_never_connects(stand_in, serve, tmp_path, monkeypatch):
    server = serve(stand_in, _sha(stand_in))
    monkeypatch.setenv("TRI3D_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="TRI3D_OFFLINE"):
        download.metric_file(INCEPTION_FILE, tmp_path)
    assert server.ranges == []
