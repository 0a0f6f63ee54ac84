"""Backfill of LMArena's text `full` history: download from a loopback server, then import (target < 5 min
projected for the real 1.1 M rows).

Writes an N-row text `full` parquet file in the dataset's real schema (220 models x 22 categories per
publish date, 1,000-row row groups, as the real file has), serves it with the other arenas' excerpts
from tests/data/lmarena on 127.0.0.1, runs `download_history` and `import_recordings` into a fresh
database (with the default rules, as `leaderwatch backfill` does), and prints rows per second and the
projection for 1.1 M rows.

    .venv/bin/python bench/bench_backfill.py [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT  # noqa: E402
from leaderwatch.alerts.ruleset import default_rules  # noqa: E402
from leaderwatch.bot.pipeline.importer import import_recordings  # noqa: E402
from leaderwatch.sources.http import Fetcher, new_client  # noqa: E402
from leaderwatch.sources.identity import Identity, load_groups  # noqa: E402
from leaderwatch.sources.lmarena import LmarenaSource, download_history  # noqa: E402
from leaderwatch.storage.db import open_db  # noqa: E402

EXCERPTS = ROOT / "tests" / "data" / "lmarena"
REAL_ROWS = 1_100_000
MODELS = 220
CATEGORIES = ["overall", "english", "coding", "hard_prompts", "math", "creative_writing", "multi_turn",
              "instruction_following", "longer_query", "chinese", "french", "german", "spanish", "japanese",
              "korean", "russian", "exclude_ties", "hard_prompts_english", "expert", "industry_mathematical",
              "industry_legal_and_government", "polish"]
SCHEMA = pa.schema([
    ("model_name", pa.string()), ("organization", pa.string()), ("license", pa.string()),
    ("rating", pa.float64()), ("rating_lower", pa.float64()), ("rating_upper", pa.float64()),
    ("variance", pa.float64()), ("vote_count", pa.float64()), ("rank", pa.float64()),
    ("category", pa.string()), ("leaderboard_publish_date", pa.string()),
])
ORGS = ["openai", "google", "anthropic", "alibaba", "deepseek", "meta", "xai", "mistral", "zai", "moonshot"]


def write_text_full(path: Path, rows: int) -> int:
    """An N-row text `full` file: publish dates every 4 days from 2023-05-08, each a full set of boards."""
    rng = random.Random(13)
    per_date = MODELS * len(CATEGORIES)
    dates = max(1, rows // per_date)
    writer = pq.ParquetWriter(path, SCHEMA, compression="snappy")
    strength = [1500.0 - 3.0 * i + rng.uniform(-2, 2) for i in range(MODELS)]
    written = 0
    for d in range(dates):
        day = (date(2023, 5, 8) + timedelta(days=4 * d)).isoformat()
        columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
        for category in CATEGORIES:
            scored = sorted(((strength[m] + rng.uniform(-15, 15), m) for m in range(MODELS)), reverse=True)
            for rank, (rating, m) in enumerate(scored, start=1):
                ci = rng.uniform(3, 12)
                columns["model_name"].append(f"model-{m:03d}")
                columns["organization"].append(ORGS[m % len(ORGS)])
                columns["license"].append("Proprietary" if m % 3 else "MIT")
                columns["rating"].append(rating)
                columns["rating_lower"].append(rating - ci)
                columns["rating_upper"].append(rating + ci)
                columns["variance"].append((ci / 1.96) ** 2)
                columns["vote_count"].append(float(rng.randint(500, 60_000)))
                columns["rank"].append(float(rank))
                columns["category"].append(category)
                columns["leaderboard_publish_date"].append(day)
        writer.write_table(pa.table(columns, schema=SCHEMA), row_group_size=1000)
        written += per_date
    writer.close()
    return written


class Files(BaseHTTPRequestHandler):
    """Serves `<base>/<config>/<file>` from the folder given as `files` (404 for anything else)."""

    files: dict[str, Path] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.files.get("/".join(self.path.split("/")[-2:]))
        if path is None:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        return


async def download(base: str, cache: Path) -> str:
    async with new_client() as client:
        return await download_history(Fetcher(client), cache, None, lambda what, done, total: None, url=base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=REAL_ROWS,
                        help=f"rows of the text file (default {REAL_ROWS:,})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the 17 arenas this server does not publish log a warning each
    work = Path(tempfile.mkdtemp())
    upstream = work / "upstream.parquet"
    started = time.perf_counter()
    rows = write_text_full(upstream, args.rows)
    print(f"generated text/full: {rows:,} rows, {upstream.stat().st_size / 1e6:.1f} MB "
          f"({time.perf_counter() - started:.1f} s, not counted)")
    Files.files = {"text/full-00000-of-00001.parquet": upstream}
    for path in EXCERPTS.glob("*/full-00000-of-00001.parquet"):
        if path.parent.name != "text":
            Files.files[f"{path.parent.name}/{path.name}"] = path
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/datasets/lmarena-ai/leaderboard-dataset/resolve/main"
    cache = work / "cache"
    try:
        start = time.perf_counter()
        line = asyncio.run(download(base, cache))
        downloaded = time.perf_counter() - start
        db = open_db(work / "backfill.db")
        start = time.perf_counter()
        identity = Identity.load()
        groups = load_groups({}, identity)
        # As `leaderwatch backfill` does: the default rules find the events of the imported history.
        report = import_recordings(db, [LmarenaSource(identity)], cache, datetime.now(UTC),
                                   rules=default_rules(list(groups)), groups=groups)
        imported = time.perf_counter() - start
        text = db.execute("SELECT count(*), sum(entry_count) FROM snapshots WHERE board_id = 'lmarena/text'"
                          ).fetchone()
        db.close()
    finally:
        server.shutdown()
    total = downloaded + imported
    print(f"download: {line}")
    print(f"download time: {downloaded:.1f} s; import time: {imported:.1f} s "
          f"({report.recordings} recordings, {report.snapshots_stored} snapshots stored, "
          f"{report.events} events found by the default rules, {len(report.errors)} errors)")
    print(f"lmarena/text: {text[0]} snapshots, {text[1]:,} entry rows")
    print(f"rows per second: {rows / total:,.0f} (download + import of {rows:,} rows in {total:.1f} s)")
    print(f"projected for {REAL_ROWS:,} rows: {total * REAL_ROWS / rows:.0f} s (target < 300 s)")


if __name__ == "__main__":
    main()
