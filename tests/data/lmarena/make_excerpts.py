"""Write this folder's excerpts: trimmed copies of the recorded LMArena files and the typed parquet files.

Run from the repository root: `.venv/bin/python tests/data/lmarena/make_excerpts.py [--from DIR]`.
The parquet files are typed below (no download); the recorded files are cut from `../shared/data`
(or DIR) and are only rewritten when that folder is present. See README.md beside this script.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
LIMIT = 50_000
REC = HERE / "recorded" / "lmarena"
"""The trimmed recordings, laid out like `../shared/data/lmarena` (a root for `recordings()`)."""

# The Bradley-Terry configs' schema as the dataset's `text` parquet files have it (pyarrow types):
# `vote_count` and `rank` are float64 in `text`, int64 in `webdev`; the agent configs differ.
TEXT_SCHEMA = pa.schema([
    ("model_name", pa.string()), ("organization", pa.string()), ("license", pa.string()),
    ("rating", pa.float64()), ("rating_lower", pa.float64()), ("rating_upper", pa.float64()),
    ("variance", pa.float64()), ("vote_count", pa.float64()), ("rank", pa.float64()),
    ("category", pa.string()), ("leaderboard_publish_date", pa.string()),
])
INT_SCHEMA = pa.schema([f if f.name not in ("vote_count", "rank") else pa.field(f.name, pa.int64())
                        for f in TEXT_SCHEMA])
AGENT_SCHEMA = pa.schema([
    ("model_name", pa.string()), ("organization", pa.string()), ("license", pa.string()),
    ("score", pa.float64()), ("score_ci_lower", pa.float64()), ("score_ci_upper", pa.float64()),
    ("observation_count", pa.float64()), ("session_count", pa.float64()), ("rank", pa.int64()),
    ("category", pa.string()), ("leaderboard_publish_date", pa.string()),
])

P = "Proprietary"


def bt_rows(day: str, category: str, models: list[tuple[str, str, str, float, float | None, float | None]],
            ) -> list[dict[str, object]]:
    """Rows of one (date, category): (name, org, licence, rating, ci half-width, votes); rank 1..N."""
    out: list[dict[str, object]] = []
    for rank, (name, org, licence, rating, ci, votes) in enumerate(
            sorted(models, key=lambda m: -m[3]), start=1):
        out.append({"model_name": name, "organization": org, "license": licence, "rating": rating,
                    "rating_lower": None if ci is None else rating - ci,
                    "rating_upper": None if ci is None else rating + ci,
                    "variance": None if ci is None else (ci / 1.96) ** 2, "vote_count": votes, "rank": rank,
                    "category": category, "leaderboard_publish_date": day})
    return out


# -- vision `full`: default ratings, 2024-06-29 .. 2025-12-11 --------------------------------------
VISION_FULL = [
    *bt_rows("2024-06-29", "overall", [
        ("gpt-4o-2024-05-13", "openai", P, 1225.8014499793492, 6.0, 9812),
        ("claude-3-5-sonnet-20240620", "anthropic", P, 1209.4, 8.0, 4120),
        ("gemini-1.5-pro-api-0514", "google", P, 1204.9, 7.0, 7301),
        ("gpt-4-turbo-2024-04-09", "openai", P, 1151.2, 6.5, 8830),
        ("claude-3-opus-20240229", "anthropic", P, 1074.6, 7.5, 6110),
    ]),
    *bt_rows("2024-06-29", "english", [
        ("gpt-4o-2024-05-13", "openai", P, 1230.2, 7.0, 6402),
    ]),
    *bt_rows("2024-09-27", "overall", [
        ("chatgpt-4o-latest-20240903", "openai", P, 1245.4594983297832, 9.0, 2920),
        ("gpt-4o-2024-05-13", "openai", P, 1212.3, 5.0, 15230),
        ("claude-3-5-sonnet-20240620", "anthropic", P, 1190.8, 6.0, 9870),
        ("qwen2-vl-72b", "alibaba", "Qwen", 1178.5, 12.0, 1840),
        ("gpt-4-turbo-2024-04-09", "openai", P, 1150.9, 5.5, 11240),
        ("llama-3.2-vision-90b-instruct", "meta", "Llama 3.2", 1071.0, 11.0, 2210),
    ]),
    *bt_rows("2024-12-01", "overall", [
        ("gemini-exp-1121", "google", P, 1295.1386975181629, 11.0, 2450),
        ("chatgpt-4o-latest-20240903", "openai", P, 1252.7, 6.0, 8120),
        ("gemini-1.5-pro-002", "google", P, 1233.4, 6.0, 7315),
        ("gpt-4o-2024-05-13", "openai", P, 1209.6, 4.5, 19840),
        ("claude-3-5-sonnet-20241022", "anthropic", P, 1198.1, 7.0, 5260),
        ("qwen2-vl-72b", "alibaba", "Qwen", 1176.9, 8.0, 4330),
        ("gpt-4-turbo-2024-04-09", "openai", P, 1151.0, 5.0, 12480),
    ]),
    *bt_rows("2024-12-01", "english", [
        ("gemini-exp-1121", "google", P, 1301.5, 13.0, 1630),
        ("gpt-4o-2024-05-13", "openai", P, 1211.0, 5.5, 13200),
    ]),
    # The fboulnois copy of the official table of that day (lmarena_vision_2025-08-04.csv), a few rows.
    *bt_rows("2025-08-04", "overall", [
        ("gemini-2.5-pro", "google", P, 1317.0, 9.0, 7681),
        ("chatgpt-4o-latest-20250326", "openai", P, 1296.0, 8.0, 8227),
        ("gpt-4o-2024-05-13", "openai", P, 1183.0, 7.0, 23806),
        ("qwen2.5-vl-72b-instruct", "alibaba", "Qwen", 1154.0, 10.0, 3884),
        ("gpt-4-turbo-2024-04-09", "openai", P, 1136.0, 10.0, 13725),
        ("qwen2-vl-72b", "alibaba", "Qwen", 1094.0, 9.0, 6028),
    ]),
    # arena-catalog's leaderboard-vision_2025-12-11.json, top five (ratings and 95% bounds).
    *[dict(r, rating_lower=lo, rating_upper=hi) for r, (lo, hi) in zip(bt_rows("2025-12-11", "overall", [
        ("gemini-3-pro", "google", P, 1330.1328842114663, 12.0, 5120),
        ("gemini-2.5-pro", "google", P, 1262.8186225639502, 7.0, 14210),
        ("gemini-2.5-flash-preview-09-2025", "google", P, 1248.3894383636764, 10.0, 3380),
        ("gpt-5.1-high", "openai", P, 1247.7271613979901, 15.0, 1820),
        ("qwen3-vl-235b-a22b-instruct", "alibaba", "Apache 2.0", 1241.4151699068661, 10.0, 3310),
    ]), [(1318.1855967350348, 1342.0801716878977), (1255.6909166896103, 1269.94632843829),
         (1238.1475344003316, 1258.6313423270212), (1232.9771194581765, 1262.4772033378038),
         (1231.280958461447, 1251.5493813522853)], strict=True)],
]

# -- vision_style_control `full`: 2024-10-15 .. 2026-04-10 ------------------------------------------
VISION_SC_FULL = [
    *bt_rows("2024-10-15", "overall", [
        ("chatgpt-4o-latest-20240903", "openai", P, 1194.017765029209, 7.0, 6410),
        ("gpt-4o-2024-05-13", "openai", P, 1171.2, 5.0, 17220),
        ("claude-3-5-sonnet-20240620", "anthropic", P, 1166.0, 6.0, 10990),
        ("qwen2-vl-72b", "alibaba", "Qwen", 1133.4, 10.0, 2950),
    ]),
    *bt_rows("2024-12-01", "overall", [
        ("chatgpt-4o-latest-20240903", "openai", P, 1202.9781681747613, 6.0, 8120),
        ("gemini-1.5-pro-002", "google", P, 1190.5, 6.0, 7315),
        ("gpt-4o-2024-05-13", "openai", P, 1170.8, 4.5, 19840),
        ("qwen2-vl-72b", "alibaba", "Qwen", 1131.9, 8.0, 4330),
    ]),
    # The scraped arena.ai vision page of 2026-04-10 (style-controlled), top three.
    *bt_rows("2026-04-10", "overall", [
        ("claude-opus-4-6-thinking", "anthropic", P, 1302.0, 14.0, 2388),
        ("gemini-3-pro", "google", P, 1296.0, 9.0, 9210),
        ("gpt-5.4-high", "openai", P, 1290.0, 12.0, 3020),
    ]),
]

# -- text `full`: the Elo era (no CIs, no votes) and two Bradley-Terry dates ------------------------
TEXT_FULL = [
    # jasontrigg0's rebuilt history for 2023-05-08 (online Elo), top five, rounded as the dataset has it.
    *bt_rows("2023-05-08", "overall", [
        ("gpt-4", "openai", P, 1274.0, None, None), ("claude-v1", "anthropic", P, 1225.0, None, None),
        ("gpt-3.5-turbo", "openai", P, 1155.0, None, None),
        ("vicuna-13b", "LMSYS", "Llama 2 Community", 1083.0, None, None),
        ("koala-13b", "UC Berkeley", "Non-commercial", 1022.0, None, None),
    ]),
    # lmsys_2024-06-19.csv (fboulnois), top seven.
    *bt_rows("2024-06-19", "overall", [
        ("gpt-4o-2024-05-13", "openai", P, 1287.0, 3.0, 42046),
        ("gemini-advanced-0514", "google", P, 1267.0, 3.5, 34382),
        ("gemini-1.5-pro-api-0514", "google", P, 1265.0, 3.5, 35184),
        ("gemini-1.5-pro-api-0409-preview", "google", P, 1258.0, 3.0, 55731),
        ("gpt-4-turbo-2024-04-09", "openai", P, 1257.0, 2.5, 65760),
        ("gpt-4-1106-preview", "openai", P, 1251.0, 2.5, 83330),
        ("claude-3-opus-20240229", "anthropic", P, 1249.0, 2.0, 133262),
    ]),
    *bt_rows("2024-06-19", "coding", [("gpt-4o-2024-05-13", "openai", P, 1305.0, 5.0, 9120)]),
    # A category row without a rating, as `falcon-180b-chat` has in `korean` (2024): never read.
    {**bt_rows("2024-06-19", "korean",
               [("falcon-180b-chat", "TII", "Falcon-180B TII License", 0.0, None, 5)])[0],
     "rating": float("nan"), "rank": float("nan")},
    # lmarena_text_2025-08-04.csv (fboulnois), top seven.
    *bt_rows("2025-08-04", "overall", [
        ("gemini-2.5-pro", "google", P, 1470.0, 5.0, 26019),
        ("gemini-2.5-pro-preview-05-06", "google", P, 1446.0, 6.0, 13715),
        ("glm-4.5", "zai", "MIT", 1434.0, 9.0, 4112),
        ("grok-4-0709", "xai", P, 1434.0, 6.0, 13058),
        ("chatgpt-4o-latest-20250326", "openai", P, 1429.0, 4.0, 30777),
        ("o3-2025-04-16", "openai", P, 1428.0, 4.0, 32033),
        ("qwen3-235b-a22b-instruct-2507", "alibaba", "Apache 2.0", 1427.0, 9.0, 4154),
    ]),
]
TEXT_LATEST = [r for r in TEXT_FULL if r["leaderboard_publish_date"] == "2025-08-04"] + bt_rows(
    "2025-08-04", "coding", [("gemini-2.5-pro", "google", P, 1481.0, 7.0, 9000)])

TEXT_SC_FULL = [
    *bt_rows("2024-08-28", "overall", [
        ("chatgpt-4o-latest", "openai", P, 1245.0, 5.0, 20100),
        ("gpt-4o-2024-05-13", "openai", P, 1223.0, 3.0, 60120),
        ("claude-3-5-sonnet-20240620", "anthropic", P, 1221.0, 4.0, 41200),
    ]),
    *bt_rows("2025-08-04", "overall", [
        ("gemini-2.5-pro", "google", P, 1458.0, 5.0, 26019),
        ("o3-2025-04-16", "openai", P, 1446.0, 4.0, 32033),
        ("glm-4.5", "zai", "MIT", 1421.0, 9.0, 4112),
    ]),
]

# -- webdev (Code Arena): `gpt-5.3-codex (codex-harness)` listed twice since 2026-05-05 ---------------
WEBDEV_LATEST = [
    *bt_rows("2026-05-05", "overall", [
        ("claude-opus-4-7-thinking", "anthropic", P, 1562.3, 9.0, 4810),
        ("gpt-5.5-high (codex-harness)", "openai", P, 1531.0, 11.0, 2650),
        ("gemini-3.1-pro-preview", "google", P, 1498.7, 8.0, 6120),
        ("gpt-5.3-codex (codex-harness)", "openai", P, 1406.4, 8.0, 2962),
        ("gpt-5.3-codex (codex-harness)", "openai", P, 1372.8, 7.0, 3540),
        ("qwen3.6-max-preview", "alibaba", P, 1365.2, 14.0, 1210),
    ]),
    # `latest` holds each category's own latest date: this one is newer than `overall`.
    *bt_rows("2026-05-07", "image_to_webdev",
             [("claude-opus-4-7-thinking", "anthropic", P, 1490.0, 20.0, 410)]),
]
WEBDEV_FULL = [
    *bt_rows("2025-11-12", "overall", [
        ("claude-sonnet-4-5-20250929-thinking-32k", "anthropic", P, 1403.0, 10.0, 3120),
        ("gpt-5-medium", "openai", P, 1384.0, 11.0, 2790), ("gemini-2.5-pro", "google", P, 1362.0, 9.0, 4100),
    ]),
    *[r for r in WEBDEV_LATEST if r["category"] == "overall"],
]

# -- agent (IPS score) ---------------------------------------------------------------------------
AGENT_LATEST = [
    {"model_name": name, "organization": org, "license": licence, "score": score,
     "score_ci_lower": score - ci, "score_ci_upper": score + ci, "observation_count": obs,
     "session_count": sessions, "rank": rank,
     "category": "overall", "leaderboard_publish_date": "2026-10-02"}
    for rank, (name, org, licence, score, ci, obs, sessions) in enumerate([
        ("Claude Fable 5.1 (Max)", "anthropic", P, 0.14310371476177605, 0.01895217171, 1683381.0, 15130.0),
        ("GPT 6.1 Sol (Max)", "openai", P, 0.1118, 0.0231, 902210.0, 8120.0),
        ("Gemini 4 Argon (High)", "google", P, 0.0894, 0.0205, 1120450.0, 9930.0),
        ("Kimi K3 (Max)", "moonshot", "Kimi K3 license", -0.0210, 0.0302, 402100.0, 3310.0),
    ], start=1)
]


def write_parquet(name: str, rows: list[dict[str, object]], schema: pa.Schema, row_group: int) -> None:
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, row_group_size=row_group, compression="snappy")
    assert path.stat().st_size < LIMIT, path


def write_parquets() -> None:
    # Small row groups so that the reader's batch-by-batch loop is exercised across groups.
    write_parquet("vision/full-00000-of-00001.parquet", VISION_FULL, TEXT_SCHEMA, 8)
    write_parquet("vision_style_control/full-00000-of-00001.parquet", VISION_SC_FULL, TEXT_SCHEMA, 8)
    write_parquet("text/full-00000-of-00001.parquet", TEXT_FULL, TEXT_SCHEMA, 8)
    write_parquet("text/latest-00000-of-00001.parquet", TEXT_LATEST, TEXT_SCHEMA, 1000)
    write_parquet("text_style_control/full-00000-of-00001.parquet", TEXT_SC_FULL, INT_SCHEMA, 1000)
    write_parquet("webdev/full-00000-of-00001.parquet", WEBDEV_FULL, INT_SCHEMA, 1000)
    write_parquet("webdev/latest-00000-of-00001.parquet", WEBDEV_LATEST, INT_SCHEMA, 1000)
    write_parquet("agent/latest-00000-of-00001.parquet", AGENT_LATEST, AGENT_SCHEMA, 1000)


# -- trimmed recordings ---------------------------------------------------------------------------

def csv_lines(src: Path, keep: int, names: set[str], column: int) -> bytes:
    """The header, the first `keep` rows and every row whose `column` is in `names`, byte for byte."""
    lines = src.read_bytes().splitlines(keepends=True)
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        field = next(csv.reader(io.StringIO(line.decode("utf-8"))))[column]
        if i < keep or field in names:
            out.append(line)
    return b"".join(out)


CSVS = {  # file -> (rows kept from the top, named rows kept, model column)
    "fboulnois_lmsys_csv/lmsys_2024-06-19.csv": (15, set(), 1),
    "fboulnois_lmsys_csv/lmsys_2024-10-16.csv": (4, {"Llama-3-70b-Instruct", "Command R (08-2024)",
                                                     "Command R+ (08-2024)", "Command R (04-2024)",
                                                     "Command R+ (04-2024)"}, 2),
    "fboulnois_lmsys_csv/lmsys_2024-12-12.csv": (3, {"Claude 3.5 Haiku (20241022)"}, 2),
    "fboulnois_lmsys_csv/lmsys_2025-01-24.csv": (12, set(), 2),
    "fboulnois_lmsys_csv/lmsys_2025-03-04.csv": (3, set(), 2),
    "fboulnois_lmarena_csv/lmarena_text_2025-08-04.csv": (12, {"Yi-34B-Chat"}, 2),
    "fboulnois_lmarena_csv/lmarena_vision_2025-08-04.csv": (10, set(), 2),
}
CATALOG = ["leaderboard-data_2025-01-28.json", "leaderboard-data_2025-03-04.json",
           "leaderboard-data-style-control_2025-03-04.json", "leaderboard-text_2025-05-24.json",
           "leaderboard-vision_2025-12-11.json"]
SCRAPE = {"2026-03-19/code.json": 3, "2026-03-19/text.json": 3, "2026-04-19/text.json": 3,
          "2026-04-12/vision.json": 3}


def trim_recordings(root: Path) -> None:
    base = root / "lmarena"
    for name, (keep, names, column) in CSVS.items():
        target = REC / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(csv_lines(base / name, keep, names, column))
    for name in CATALOG:
        data = json.loads((base / "arena_catalog" / name).read_bytes())
        full = sorted(data["full"].items(), key=lambda kv: -kv[1]["rating"])
        keep = dict(full[:6] + [kv for kv in full if kv[0] == "deepseek-r1"])
        target = REC / "arena_catalog" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        other = next((k for k in data if k != "full"), None)  # one more category, as the files have
        trimmed = {"full": keep}
        if other is not None:
            trimmed[other] = dict(list(data[other].items())[:2])
        target.write_text(json.dumps(trimmed, indent=2) + "\n", encoding="utf-8")
    for name, keep in SCRAPE.items():
        doc = json.loads((base / "arena_ai_daily_scrape" / name).read_bytes())
        named = {"gemma-3-27b-it"}
        doc["models"] = [m for i, m in enumerate(doc["models"]) if i < keep or m["model"] in named]
        doc["meta"]["model_count"] = len(doc["models"])  # the parser checks it against the list
        target = REC / "arena_ai_daily_scrape" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    history = (base / "jasontrigg0_history" / "alltime.csv").read_bytes().splitlines(keepends=True)
    out = [history[0]]
    last = [ln for ln in history[1:] if ln.rstrip().endswith(b",20250326")]
    top = sorted(last, key=lambda ln: -float(ln.split(b",")[2]))[:6]
    for line in history[1:]:
        day = line.rstrip().rsplit(b",", 1)[1]
        if day in (b"20230508", b"20230522", b"20230619") or line in top or (
                day == b"20250326" and line.startswith((b"yi-34b-chat,", b"grok-3-preview"))):
            out.append(line)
    target = REC / "jasontrigg0_history" / "alltime.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="root", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    write_parquets()
    if args.root.is_dir():
        trim_recordings(args.root)
    else:
        print(f"{args.root} not found: the recorded excerpts were left as they are", file=sys.stderr)
    files = [p for p in HERE.rglob("*") if p.is_file()]
    big = [p for p in files if p.stat().st_size >= LIMIT]
    total = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {total:,} bytes")
    if big or total >= 300_000:
        sys.exit(f"too large: {big or total}")


if __name__ == "__main__":
    main()
