"""The demo's Gradio side without a browser: the CLI wiring and the server's life cycle (needs the demo extra)."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import urllib.request

import pytest
from helpers import free_port

from svac.cli import main

pytest.importorskip("gradio", reason="needs the demo extra: pip install -e '.[demo]'")


def test_svac_demo_passes_its_arguments_to_the_library(monkeypatch):
    calls = []
    monkeypatch.setattr("svac.cli._load", lambda args: ("model", args.model, args.overrides))
    monkeypatch.setattr("svac.demo.app.launch_demo", lambda model, **kw: calls.append((model, kw)))
    assert main(["demo", "--model", "tiny.yaml", "--port", "7999", "--share", "true", "--frames", "6",
                 "--set", "astc.clip_len=3"]) == 0
    assert calls == [(("model", "tiny.yaml", ["astc.clip_len=3"]),
                      {"host": "127.0.0.1", "port": 7999, "share": True, "num_frames": 6, "clip_len": None})]


def test_background_server_serves_the_page_and_close_removes_its_files(tiny_model, tmp_path, monkeypatch):
    from svac.demo.app import launch_demo

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = launch_demo(tiny_model, port=free_port(), block=False, quiet=True, examples=[])
    try:
        assert server.work_dir.parent == tmp_path and server.share_url is None
        with urllib.request.urlopen(server.url, timeout=10) as page:
            assert page.status == 200 and b"svac demo" in page.read()
    finally:
        server.close()
    assert not server.work_dir.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_foreground_server_stops_on_sigterm_and_cleans_up(tiny_model, tmp_path, monkeypatch):
    from svac.demo.app import launch_demo

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port, seen = free_port(), []
    before = signal.getsignal(signal.SIGTERM)

    def stop_once_up():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not seen:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    seen.append(page.status)
            except OSError:
                time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` sends to `svac demo`

    threading.Thread(target=stop_once_up, daemon=True).start()
    assert launch_demo(tiny_model, port=port, quiet=True, examples=[]) is None  # returns once stopped
    assert seen == [200]
    assert list(tmp_path.glob("svac-demo-*")) == []  # the run folders are gone
    assert signal.getsignal(signal.SIGTERM) is before
