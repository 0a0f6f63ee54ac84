"""What `leaderwatch --help` and `leaderwatch query` load (issue 14 item 3): the chat libraries and aiohttp
only when a chat adapter runs, psycopg only for a PostgreSQL database and cryptography only for a public
Slack app or Discord over HTTP (issue 15); bench/bench_latency.py times `--help`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ON_DEMAND = ("discord", "slack_bolt", "slack_sdk", "aiohttp", "psycopg", "psycopg_pool", "cryptography")

PROBE = """
import contextlib, io, json, sys
from leaderwatch.bot.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(),
                  "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(LIBRARIES))}))
""".replace("LIBRARIES", repr(ON_DEMAND))


def probe(*argv: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADERWATCH_", "SLACK_", "DISCORD_"))}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_help_loads_no_library_it_does_not_need() -> None:
    result = probe("--help")
    assert result["code"] == 0 and "query" in str(result["out"])
    assert result["loaded"] == []


def test_query_loads_no_library_it_does_not_need(imported_excerpts: tuple[Path, str]) -> None:
    result = probe("--db", str(imported_excerpts[0]), "query", "top", "lmarena/text", "3")
    assert result["code"] == 0 and "lmarena/text" in str(result["out"])
    assert result["loaded"] == []


@pytest.mark.parametrize("library", ON_DEMAND)
def test_the_probe_sees_a_library_once_loaded(library: str) -> None:
    code = PROBE.replace("from leaderwatch.bot.cli.main import main", f"import {library}\n"
                         "from leaderwatch.bot.cli.main import main")
    done = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=120,
                          check=True)
    assert library in json.loads(done.stdout.splitlines()[-1])["loaded"]
