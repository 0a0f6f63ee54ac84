"""Rebuild tests/data/recordings/ from the full recordings: a chosen few files, each cut to its top rows.

Run by hand from the repository root (it rewrites this folder's data files and README.md):

    .venv/bin/python tests/data/recordings/trim.py [--from ../shared/data]

Every excerpt keeps the path it has in the full folder, so the sources' `recordings(root)` discovery and
`leaderwatch import --recordings` read this folder as they read the full one. A file is cut, never
edited: the rows kept are the top rows by the file's score, in the file's own order, byte for byte
(CSV and YAML lines are copied; JSON is written back in the file's own indentation, which reproduces
the untrimmed file exactly). The one exception is said where it happens (the daily scrape's
`meta.model_count`, which the parser checks against the rows listed).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MAX_FILE = 50_000
MAX_FOLDER = 1_200_000


# --- how a file is cut ---------------------------------------------------------------------------

def _number(text: object) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _top(scores: list[float | None], keep: int) -> set[int]:
    """Indices of the `keep` best scores (missing scores last; on equal scores, the earlier row)."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
    return set(order[:keep])


def _csv_records(text: str) -> Iterator[tuple[list[str], str]]:
    """Each CSV record with its exact source text (a quoted field may span lines)."""
    lines = text.splitlines(keepends=True)
    reader = csv.reader(iter(lines))
    done = 0
    for fields in reader:
        yield fields, "".join(lines[done:reader.line_num])
        done = reader.line_num


def cut_csv(text: str, keep: int, score: str | None) -> tuple[str, str]:
    """The header and the `keep` rows with the highest `score` column (`a|b`: the first the header has;
    None: the mean of every number in the row)."""
    records = list(_csv_records(text))
    header, rows = records[0][0], records[1:]
    if score is None:
        def value(fields: list[str]) -> float | None:
            numbers = [n for n in map(_number, fields[1:]) if n is not None]
            return sum(numbers) / len(numbers) if numbers else None
        how = "by the mean of the row's task scores"
    else:
        column = next(header.index(name) for name in score.split("|") if name in header)

        def value(fields: list[str]) -> float | None:
            return _number(fields[column]) if column < len(fields) else None
        how = f"by `{header[column]}`"
    kept = _top([value(fields) for fields, _ in rows], keep)
    body = "".join(raw for i, (_, raw) in enumerate(rows) if i in kept)
    return records[0][1] + body, f"top {min(keep, len(rows))} of {len(rows)} rows {how}"


def cut_long_csv(text: str, keep: int, score: str, by: str, values: tuple[str, ...]) -> tuple[str, str]:
    """A long CSV (one row per model and date): for each of `values` of column `by`, its top `keep` rows."""
    records = list(_csv_records(text))
    header, rows = records[0][0], records[1:]
    group, column = header.index(by), header.index(score)
    kept: set[int] = set()
    for wanted in values:
        members = [i for i, (fields, _) in enumerate(rows) if fields[group] == wanted]
        best = _top([_number(rows[i][0][column]) for i in members], keep)
        kept.update(members[j] for j in best)
    body = "".join(raw for i, (_, raw) in enumerate(rows) if i in kept)
    return records[0][1] + body, (f"the rows of {by} {', '.join(values)} only, top {keep} of each by "
                                  f"`{score}` ({len(kept)} of {len(rows)} rows)")


def cut_yaml_runs(text: str, keep: int, score: str) -> tuple[str, str]:
    """An Aider YAML list of runs (each starts with `- ` at column 0): the `keep` best runs by `score`."""
    starts = [m.start() for m in re.finditer(r"^- ", text, re.MULTILINE)]
    ends = [*starts[1:], len(text)]
    head, blocks = text[:starts[0]], [text[a:b] for a, b in zip(starts, ends, strict=True)]
    scores = []
    for block in blocks:
        [run] = yaml.safe_load(block)
        scores.append(_number(run.get(score)))
    kept = _top(scores, keep)
    body = "".join(b for i, b in enumerate(blocks) if i in kept)
    return head + body, f"top {min(keep, len(blocks))} of {len(blocks)} runs by `{score}`"


def _dump(data: object, indent: int) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=False)


def _indent_of(text: str, data: object) -> int:
    for indent in (4, 2):
        if _dump(data, indent) == text.rstrip("\n"):
            return indent
    raise SystemExit("a JSON file in an indentation this script does not reproduce")


def cut_catalog(text: str, keep: int, categories: tuple[str, ...]) -> tuple[str, str]:
    """arena-catalog `{category: {model: {rating, ...}}}`: the named categories, each its top `keep`."""
    data = json.loads(text)
    indent = _indent_of(text, data)
    out = {}
    for name in categories:
        table = data[name]
        keys = list(table)
        kept = _top([_number(table[k]["rating"]) for k in keys], keep)
        out[name] = {k: table[k] for i, k in enumerate(keys) if i in kept}
    sizes = ", ".join(f"{c} {len(out[c])} of {len(data[c])}" for c in categories)
    return _dump(out, indent), (f"category {', '.join(categories)} of {len(data)} only; top models by "
                                f"`rating` ({sizes})")


def cut_scrape(text: str, keep: int) -> tuple[str, str]:
    """A scraped arena.ai page: its top `keep` models; `meta.model_count` says how many are listed."""
    data = json.loads(text)
    indent = _indent_of(text, data)
    models = data["models"]
    if len(models) <= keep:
        return text, f"whole ({len(models)} models)"
    data["models"] = models[:keep]
    data["meta"]["model_count"] = keep
    return _dump(data, indent), (f"top {keep} of {len(models)} models; `meta.model_count` changed from "
                                 f"{len(models)} to {keep} to match")


def cut_swebench(text: str, keep: int) -> tuple[str, str]:
    """SWE-bench `{"leaderboards": [{"name", "results"}]}`: each board's `keep` best by `resolved`."""
    data = json.loads(text)
    indent = _indent_of(text, data)
    sizes = []
    for board in data["leaderboards"]:
        results = board["results"]
        kept = _top([_number(r["resolved"]) for r in results], keep)
        board["results"] = [r for i, r in enumerate(results) if i in kept]
        sizes.append(f"{board['name']} {len(board['results'])} of {len(results)}")
    return _dump(data, indent), f"each board's top results by `resolved` ({'; '.join(sizes)})"


def whole(text: str) -> tuple[str, str]:
    return text, "whole (not cut)"


# --- the selection ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Excerpt:
    path: str
    cut: Callable[[str], tuple[str, str]]
    why: str


def csv_top(keep: int, score: str | None) -> Callable[[str], tuple[str, str]]:
    return lambda text: cut_csv(text, keep, score)


def runs(keep: int) -> Callable[[str], tuple[str, str]]:
    return lambda text: cut_yaml_runs(text, keep, "pass_rate_2")


def catalog(keep: int) -> Callable[[str], tuple[str, str]]:
    return lambda text: cut_catalog(text, keep, ("full",))


def scrape(keep: int) -> Callable[[str], tuple[str, str]]:
    return lambda text: cut_scrape(text, keep)


def swebench(keep: int) -> Callable[[str], tuple[str, str]]:
    return lambda text: cut_swebench(text, keep)


LMARENA_CSV_DAYS = ("2025-07-27", "2025-07-28", "2025-08-01", "2025-08-04")
LMSYS_DAYS = ("2024-06-19", "2024-10-16", "2024-10-24", "2024-12-03",
              *(f"2025-01-{d}" for d in ("07", "16", "20", "22", "24", "29")), "2025-02-16", "2025-02-22")
SCRAPE_DAYS = (*(f"2026-03-{d}" for d in range(19, 32)), *(f"2026-04-{d:02d}" for d in range(1, 20)))
SCRAPE_KEEP = {"text": 40, "code": 10, "vision": 25}

SELECTION: tuple[Excerpt, ...] = (
    *(Excerpt(f"lmarena/fboulnois_lmarena_csv/lmarena_{board}_{day}.csv", csv_top(keep, "arena_score"),
              "charts, commands, reports, the chat adapters: GLM-4.5 enters the text top 10 on 08-04")
      for board, keep in (("text", 80), ("vision", 60)) for day in LMARENA_CSV_DAYS),
    *(Excerpt(f"lmarena/fboulnois_lmsys_csv/lmsys_{day}.csv", csv_top(40, "arena_score|arena_elo"),
              "export, the CLI, replay: DeepSeek-R1 #3 with 1357 on 2025-01-24; the first text table; a "
              "year before the last one; China holding 3 of the top 10 and losing it (10-16, 10-24, "
              "02-16, 02-22); the `rank_stylectrl` column from 2024-10-16")
      for day in LMSYS_DAYS),
    *(Excerpt(f"lmarena/arena_catalog/leaderboard-{kind}_{day}.json", catalog(40),
              "the chat adapters, the CLI: gemini-3-pro takes #1 on 2025-12-11")
      for kind, day in (("text", "2025-11-06"), ("text", "2025-12-11"), ("vision", "2025-12-11"))),
    *(Excerpt(f"lmarena/arena_ai_daily_scrape/{day}/{kind}.json", scrape(keep),
              "retention: a month of daily top-N tables of three boards, times of day included")
      for day in SCRAPE_DAYS for kind, keep in SCRAPE_KEEP.items()),
    Excerpt("lmarena/arena_ai_daily_scrape/latest.json", whole, "the scrape's pointer file (not data)"),
    *(Excerpt(f"aider/edit_leaderboard/edit_leaderboard_{day}.yml", runs(20),
              "replay, the service, stories: Deepseek Coder V2 takes #1 on 2024-06-17, Claude 3.5 Sonnet "
              "takes it back on 06-21")
      for day in ("2024-05-15", "2024-06-17", "2024-06-21")),
    *(Excerpt(f"aider/polyglot_leaderboard/polyglot_leaderboard_{day}.yml", runs(keep),
              "commands, export, the CLI: gpt-5 new #1 on 2025-08-25; composite runs in January 2025")
      for day, keep in (("2024-12-22", 20), ("2025-01-20", 20), ("2025-01-24", 20), ("2025-01-31", 20),
                        ("2025-07-18", 25), ("2025-08-25", 25), ("2025-10-04", 25))),
    Excerpt("open_llm_leaderboard/v1/huggingface_v1_2024-07-13.csv", csv_top(20, "average"),
            "the CLI: the v1 board"),
    Excerpt("open_llm_leaderboard/v2/huggingface_v2_2024-07-13.csv", csv_top(40, "average"),
            "race, the CLI: Qwen holds 3 of the v2 top 10 on 2024-07-13"),
    Excerpt("livebench/categories_2025_11_25/categories_2025_11_25__as_of_2025-12-01.json", whole,
            "the categories of the table below"),
    Excerpt("livebench/table_2025_11_25/table_2025_11_25__as_of_2025-12-01.csv", csv_top(25, None),
            "the CLI, replay: LiveBench's boards; a release change (a change of method)"),
    Excerpt("livebench/categories_2025_12_23/categories_2025_12_23__as_of_2025-12-23.json", whole,
            "the categories of the table below"),
    Excerpt("livebench/table_2025_12_23/table_2025_12_23__as_of_2025-12-23.csv", csv_top(25, None),
            "the next release"),
    Excerpt("swebench/leaderboards_json/leaderboards_2025-07-11.json", swebench(5),
            "the CLI: SWE-bench's boards"),
    Excerpt("epoch/eci_snapshots/epoch_capabilities_index_2026-04-10.csv", csv_top(30, "ECI Score"),
            "the CLI: Epoch's capabilities index"),
)


# --- provenance and the README ---------------------------------------------------------------------

LICENCES = (
    ("lmarena/fboulnois_", "MPL-2.0 (the fboulnois/llm-leaderboard-csv repository; no licence stated for "
                           "the data, which is LMArena's)"),
    ("lmarena/arena_catalog/", "none stated (lmarena/arena-catalog has no LICENSE file); LMArena's data"),
    ("lmarena/arena_ai_daily_scrape/", "MIT (oolong-tea-2026/arena-ai-leaderboards); scraped from arena.ai"),
    ("aider/", "Apache-2.0 (Aider-AI/aider)"),
    ("open_llm_leaderboard/", "MPL-2.0 (the fboulnois/llm-leaderboard-csv repository); the Open LLM "
                              "Leaderboard contents dataset states none"),
    ("livebench/", "none stated (LiveBench/livebench.github.io has no licence file)"),
    ("swebench/", "CC BY-NC 4.0 (SWE-bench/swe-bench.github.io)"),
    ("epoch/", "CC BY 4.0 (Epoch AI)"),
)


def provenance(full: Path) -> dict[str, tuple[str, str, str, str]]:
    """PROVENANCE.md's per-file index: file -> (origin repo, path, commit, snapshot date)."""
    found = {}
    row = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| `([^`]+)` \| ([0-9a-f]+) \| ([0-9-]+) \|")
    for line in (full / "PROVENANCE.md").read_text(encoding="utf-8").splitlines():
        m = row.match(line)
        if m:
            found[m[1]] = (m[2].strip(), m[3], m[4], m[5])
    return found


def licence(path: str) -> str:
    return next(text for prefix, text in LICENCES if path.startswith(prefix))


README_HEAD = """# Recorded leaderboard excerpts (`tests/data/recordings/`)

A small, trimmed copy of the recorded real payloads in `../shared/data` (the full folder, described by
its `PROVENANCE.md`), laid out under the SAME relative paths, so that every source's
`recordings(root)` discovery and `leaderwatch import --recordings tests/data/recordings` read it as they
read the full folder. The tests read it through the `excerpts` fixture (and `imported_excerpts`, this
folder imported once per session); the tests that need the whole recorded history are marked
`whole_history` and keep reading the full folder (`LEADERWATCH_RECORDINGS`, default `../shared/data`).

No file here is a new download: each is a file of the full folder, cut. The rows kept are the top rows
by the file's own score, in the file's own order, byte for byte: CSV and YAML lines are copied as they
are; JSON files are written back in their own indentation (which reproduces the untrimmed files
exactly). The one edit is the daily scrape's `meta.model_count`, set to the number of models kept
because the parser checks it against the list. Nothing is typed by hand.

**Regenerate** (after changing the selection in `trim.py`): from the repository root, with the full
folder present,

    .venv/bin/python tests/data/recordings/trim.py            # or: --from /path/to/shared/data

It rewrites the data files and this README, and refuses a file over 50 KB or a folder over 1.2 MB.
Then run the tests: several assert facts of these excerpts (e.g. GLM-4.5 entering the lmarena/text top
10 on 2025-08-04, gpt-5 the new #1 on aider/polyglot on 2025-08-25, Qwen holding 3 of the openllm/v2
top 10 on 2024-07-13).

**Dates.** The full folder was collected on 2026-11-25 from copies of public git histories (no live
endpoint was called); "snapshot" below is the date the data represents (the commit's date, or the
scrape's day). The excerpts were cut on 2026-12-04.

## Files

Origin = repository, path at commit, commit (from PROVENANCE.md). "Cut" = what was kept.

"""


def write_readme(rows: list[tuple[Excerpt, str, int]], index: dict[str, tuple[str, str, str, str]]) -> None:
    sections: dict[str, list[tuple[Excerpt, str, int]]] = {}
    for row in rows:
        path = row[0].path
        top = "/".join(path.split("/")[:2]) if path.startswith("lmarena/arena_ai") else path.rsplit("/", 1)[0]
        sections.setdefault(top, []).append(row)
    out = [README_HEAD]
    for top, members in sections.items():
        repos = sorted({index.get(e.path, ("?",))[0] for e, _, _ in members})
        uses = list(dict.fromkeys(e.why for e, _, _ in members))
        out.append(f"\n### `{top}/`\n\nFrom {', '.join(repos)}. Licence: {licence(members[0][0].path)}.\n"
                   f"Used for: {'; '.join(uses)}.\n\n"
                   "| file (bytes) | path at commit | snapshot | cut |\n|---|---|---|---|\n")
        for excerpt, how, size in members:
            _, path, commit, snapshot = index.get(excerpt.path, ("?", "?", "?", "?"))
            out.append(f"| `{excerpt.path[len(top) + 1:]}` ({size:,}) | `{path}` @ {commit} | {snapshot} | "
                       f"{how} |\n")
    out.append("\n`trim.py` (this folder's script) and this README are not recordings.\n")
    (HERE / "README.md").write_text("".join(out), encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="full", type=Path, default=REPO.parent / "shared" / "data",
                        help="the full recordings folder (default ../shared/data)")
    args = parser.parse_args(argv)
    full: Path = args.full
    if not (full / "PROVENANCE.md").is_file():
        print(f"{full} is not the recordings folder (no PROVENANCE.md): give it with --from", file=sys.stderr)
        return 2
    index = provenance(full)
    for child in HERE.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    rows, total = [], 0
    for excerpt in SELECTION:
        text = (full / excerpt.path).read_bytes().decode("utf-8")  # line ends as they are
        cut, how = excerpt.cut(text)
        data = cut.encode("utf-8")
        if len(data) >= MAX_FILE:
            print(f"{excerpt.path}: {len(data):,} bytes after the cut; keep fewer rows", file=sys.stderr)
            return 1
        target = HERE / excerpt.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rows.append((excerpt, how, len(data)))
        total += len(data)
    write_readme(rows, index)
    total += sum(p.stat().st_size for p in (HERE / "README.md", HERE / "trim.py"))
    print(f"{len(rows)} files, {total:,} bytes in all (README and trim.py included)")
    if total > MAX_FOLDER:
        print(f"over the {MAX_FOLDER:,}-byte budget: keep fewer rows or files", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
