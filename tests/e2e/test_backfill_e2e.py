"""`leaderwatch backfill` as a user runs it: the installed program, its config file naming a mirror of
LMArena's dataset (`[sources.lmarena] url`), a loopback server replaying the recorded `full` parquet
excerpts (tests/data/lmarena), then `leaderwatch top` on the history it stored."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import REPO

PARQUET = REPO / "tests" / "data" / "lmarena"


class Mirror(BaseHTTPRequestHandler):
    """`/<config>/full-00000-of-00001.parquet` from the excerpts; 404 (as the Hub answers) otherwise."""

    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        config, _, name = self.path.lstrip("/").partition("/")
        path = PARQUET / config / name
        if name.startswith("full-") and path.is_file():
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
        else:
            body = b"Entry not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def mirror() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Mirror.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def leaderwatch(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADERWATCH_", "SLACK_", "DISCORD_"))}
    env |= {"LEADERWATCH_DB": str(tmp_path / "lw.db"), "LEADERWATCH_CONFIG": str(tmp_path / "lw.toml")}
    return subprocess.run([sys.executable, "-m", "leaderwatch", *argv], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_backfill_from_a_mirror_fills_the_vision_board_from_2024(tmp_path: Path, mirror: str) -> None:
    (tmp_path / "lw.toml").write_text(f'[sources.lmarena]\nurl = "{mirror}"\n')

    first = leaderwatch(tmp_path, "backfill", "lmarena")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "lmarena: LMArena's leaderboard dataset (CC BY 4.0), `full` split of 5 arenas: 5 downloaded" \
        in first.stdout
    lines = first.stdout.splitlines()
    coverage = lines[lines.index("lmarena/vision") + 1]  # the per-board summary, as `import` prints it
    assert coverage.split()[:3] == ["2024-06-29", "..", "2025-12-11"]  # the board's history from 2024
    assert "/vision/full-00000-of-00001.parquet" in Mirror.requests
    assert "lmarena: 1/22 files" in first.stderr  # progress, per origin

    top = leaderwatch(tmp_path, "top", "lmarena/vision", "--at", "2024-12-01", "-n", "3")
    assert top.returncode == 0, top.stderr[-2000:]
    rows = [line.split()[1] for line in top.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert rows == ["gemini-exp-1121", "chatgpt-4o-latest-20240903", "gemini-1.5-pro-002"]

    Mirror.requests = []
    again = leaderwatch(tmp_path, "backfill", "lmarena")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 downloaded" in again.stdout and "5 already there" in again.stdout
    assert "imported 0 recording(s)" in again.stdout
    assert not any(path.endswith(".parquet") and "/full-" in path and "vision" in path
                   for path in Mirror.requests)  # nothing it has is fetched again
