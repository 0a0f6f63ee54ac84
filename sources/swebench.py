"""SWE-bench leaderboards (Verified, Lite, bash-only, Multilingual): systems ranked by % of issues resolved.

The site (swebench.com) renders `data/leaderboards.json` from its GitHub repository; before
2025-05 the same table lived in `template/data.json`. Four shapes occur:
- `{"test_leaderboard": [...], "lite_leaderboard": [...]}` with `resolved` as a string (2024);
- `{"leaderboards": [{"name", "results"}]}` with rows `name, folder, resolved, date, ..., org_logo`
  and no tags (2024-10 to 2025-05);
- the same with rows carrying `tags` ("Model: ...", "Org: ...", "System: ...") and `os_model`
  (2025-07 on), the live format.
Rows are systems, not models: the `Model:` tags become the entry's components and the `Org:` tag
its organization, so a system on several organizations' models (or countries) comes out mixed.

The boards follow what swebench.com shows (its `js/mainResults.js`). Since 2026-02 the Verified tab
shows by default the `bash-only` rows run with mini-SWE-agent 2.x (`mini-swe-agent_version` 2.*), its
agent menu offering every mini-SWE-agent version ("bash-only") and "All agents" (the `Verified` list).
So: `swebench/verified` is the Verified list (all agents, as before), `swebench/bash-only` every
bash-only row, `swebench/verified-mini-v2` the default view, and `swebench/multilingual` the
Multilingual list (from 2026-01-20; mini-SWE-agent runs on 300 issues in 9 languages). The Full (Test)
and Multimodal tabs are not followed. Should mini-SWE-agent rows move into the `Verified` list (rows
with a `mini-swe-agent_version`) with no `bash-only` list left, the bash-only boards are read from them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from leaderwatch.sources.base import (
    Board,
    Entry,
    Recording,
    ShapeError,
    Snapshot,
    SourceError,
    make_snapshot,
    ranked,
)
from leaderwatch.sources.http import Fetcher, utcnow
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.parsing import (
    check_boards,
    check_record,
    dated_files,
    load_json,
    read_recording,
    read_score,
)

logger = logging.getLogger(__name__)

SOURCE = "swebench"
LIVE_URL = "https://raw.githubusercontent.com/SWE-bench/swe-bench.github.io/master/data/leaderboards.json"


def _board(name: str, title: str) -> Board:
    """A listed board; the site shows each on its own page named like the board."""
    return Board(f"{SOURCE}/{name}", title, "% resolved", url=f"https://www.swebench.com/{name}.html")


VERIFIED = _board("verified", "SWE-bench Verified, all agents (500 human-validated GitHub issues)")
LITE = _board("lite", "SWE-bench Lite (300 GitHub issues)")
BASH_ONLY = _board("bash-only", "SWE-bench Verified, bash only (models in mini-SWE-agent, every version)")
MINI_V2 = Board(f"{SOURCE}/verified-mini-v2",
                "SWE-bench Verified, the site's default view (models in mini-SWE-agent 2.x, bash only)",
                "% resolved", url="https://www.swebench.com/")
MULTILINGUAL = Board(f"{SOURCE}/multilingual",
                     "SWE-bench Multilingual (300 GitHub issues in 9 languages, models in mini-SWE-agent)",
                     "% resolved", url="https://www.swebench.com/multilingual-leaderboard.html")
BOARDS = (VERIFIED, LITE, BASH_ONLY, MINI_V2, MULTILINGUAL)
# Published leaderboard name (case-folded) -> board; "Test" (full) and "Multimodal" are not listed.
_BY_NAME = {"verified": VERIFIED, "lite": LITE, "bash-only": BASH_ONLY, "multilingual": MULTILINGUAL}
CORE = (VERIFIED, LITE, BASH_ONLY)
"""Boards every live file must give (since 2025-07); another that vanishes is reported once."""
MINI_VERSION = "mini-swe-agent_version"

FAMILY_LEADERBOARDS = "swebench/leaderboards-json"
FAMILY_TEMPLATE = "swebench/template-data-json"
ORIGIN_LEADERBOARDS = "swebench-leaderboards-json"
ORIGIN_TEMPLATE = "swebench-template-data-json"
PRIORITY = 10  # copies of the official published table

_FILE_DATE = re.compile(r"_(?P<date>\d{4}-\d{2}-\d{2})(?:__[^.]*)?\.json$")
_NAME_IN_FILE = re.compile(rb'"name"\s*:\s*"(Verified|Lite|bash-only|Multilingual)"', re.IGNORECASE)
_MINI_V2_IN_FILE = re.compile(rb'"mini-swe-agent_version"\s*:\s*"2\.')
_HF_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/")
REQUIRED = ("name", "resolved")


def _board_tables(data: Any, url: str) -> list[tuple[Board, Any]]:
    """(board, results) for every listed board present, from either top-level shape."""
    if not isinstance(data, dict):
        raise SourceError(SOURCE, url, f"expected a JSON object, got a {type(data).__name__}")
    tables: list[tuple[str, Any]] = []
    if "leaderboards" in data:
        boards = data["leaderboards"]
        if not isinstance(boards, list):
            raise SourceError(SOURCE, url, "'leaderboards' is not a list")
        for i, item in enumerate(boards, start=1):
            if not isinstance(item, dict) or "name" not in item or "results" not in item:
                raise SourceError(SOURCE, url, f"leaderboard {i} lacks 'name' or 'results'")
            tables.append((str(item["name"]), item["results"]))
    else:
        # The 2024 template: one key per leaderboard, e.g. "lite_leaderboard".
        tables = [(k.removesuffix("_leaderboard"), v) for k, v in data.items()
                  if isinstance(k, str) and k.endswith("_leaderboard")]
        if not tables:
            raise SourceError(
                SOURCE, url,
                f"expected a 'leaderboards' list or '*_leaderboard' keys, found keys {sorted(data)[:8]}",
            )
    found: dict[Board, Any] = {}
    for name, results in tables:
        board = _BY_NAME.get(name.casefold())
        if board is not None:
            found[board] = results
    if not found:
        raise ShapeError(
            SOURCE, url,
            f"no Verified, Lite or bash-only leaderboard in the file (found {[n for n, _ in tables]})",
        )
    verified = found.get(VERIFIED)
    if BASH_ONLY not in found and isinstance(verified, list) and any(is_mini(r) for r in verified):
        found[BASH_ONLY] = [r for r in verified if is_mini(r)]
    bash_only = found.get(BASH_ONLY)
    if isinstance(bash_only, list):
        default_view = [r for r in bash_only if is_mini(r, major="2")]
        if default_view:
            found[MINI_V2] = default_view
    return [(b, found[b]) for b in BOARDS if b in found]


def is_mini(row: object, major: str = "") -> bool:
    """Whether a row was run with mini-SWE-agent (`mini-swe-agent_version`), of that major version."""
    version = row.get(MINI_VERSION) if isinstance(row, dict) else None
    return isinstance(version, str) and bool(version) and version.startswith(f"{major}." if major else "")


def _tag_values(tags: Iterable[Any], key: str) -> list[str]:
    """Distinct values of `Key: value` tags, in order."""
    values: list[str] = []
    prefix = key + ":"
    for tag in tags:
        if isinstance(tag, str) and tag.startswith(prefix):
            value = tag[len(prefix):].strip()
            if value and value not in values:
                values.append(value)
    return values


def _model_name(tag_value: str) -> str:
    # Some Model: tags are Hugging Face URLs; the repo id is the model's name.
    for prefix in _HF_PREFIXES:
        if tag_value.startswith(prefix):
            return tag_value[len(prefix):].strip("/")
    return tag_value


def _row_entry(identity: Identity, row: dict[str, Any], score: float, rank: int) -> Entry:
    """An Entry for one system row, its Model: tags as components and its Org: tag as organization."""
    name = str(row["name"]).strip()
    tags = row.get("tags")
    if not isinstance(tags, list):
        # Rows before 2025-07 have no tags: a name such as "SWE-agent + GPT 4" names a system and
        # a model, and must not be split like an Aider architect pair, nor guessed from `org_logo`.
        return identity.entry(name, score, rank, component_models=[])
    models = [_model_name(v) for v in _tag_values(tags, "Model")]
    orgs = _tag_values(tags, "Org")
    os_model = row.get("os_model")
    open_weights = os_model if isinstance(os_model, bool) else None
    countries: list[str] | None = None
    if len(orgs) > 1:
        # e.g. "Org: Moonshot AI" + "Org: SWE-agent": Identity.entry takes one organization, so
        # every tagged organization's countries are gathered here to let it judge `mixed`.
        countries = []
        model_orgs = [identity.organization_of(m)[0] for m in models]
        for org in orgs + [o for o in model_orgs if o]:
            for code in identity.countries_of(org):
                if code not in countries:
                    countries.append(code)
    return identity.entry(
        name, score, rank,
        organization=orgs[0] if orgs else None,
        countries=countries,
        open_weights=open_weights,
        component_models=models,
    )


def parse_leaderboards(
    content: bytes,
    *,
    identity: Identity,
    url: str,
    as_of: datetime,
    fetched_at: datetime,
    origin: str = ORIGIN_LEADERBOARDS,
) -> list[Snapshot]:
    """Parse a leaderboards.json / template data.json file: one snapshot per listed board present."""
    data = load_json(content, source=SOURCE, url=url, expected="leaderboards JSON")
    snapshots: list[Snapshot] = []
    for board, results in _board_tables(data, url):
        label = board.id.split("/", 1)[1]
        if not isinstance(results, list):
            raise SourceError(SOURCE, url, f"{label}: 'results' is not a list")
        if not results:
            raise SourceError(SOURCE, url, f"{label}: empty leaderboard (no results)")
        scored: list[tuple[dict[str, Any], float]] = []
        for i, row in enumerate(results, start=1):
            check_record(row, REQUIRED, f"{label} row {i}", source=SOURCE, url=url)
            # The 2024 template writes "12.29"; later files write 12.29.
            scored.append((row, read_score(row["resolved"], f"{label} row {i} ({row['name']}): resolved",
                                           source=SOURCE, url=url, within=(0.0, 100.0))))
        entries = [_row_entry(identity, row, score, rank) for row, score, rank in ranked(board, scored)]
        snapshots.append(make_snapshot(board, as_of, fetched_at, entries, origin=origin))
    return snapshots


def _boards_in(path: Path) -> tuple[str, ...]:
    """The listed boards a recorded file holds, by a byte scan rather than a JSON parse."""
    content = path.read_bytes()
    names = {m.group(1).decode().casefold() for m in _NAME_IN_FILE.finditer(content)}
    if b'"lite_leaderboard"' in content:
        names.add("lite")
    if _MINI_V2_IN_FILE.search(content):
        names.add("verified-mini-v2")
    return tuple(b.id for b in BOARDS if b.id.split("/", 1)[1] in names)


class SWEBenchSource:
    """SWE-bench Verified (all agents, bash-only, the default view), Lite and Multilingual, from the
    site's leaderboards JSON."""

    name = SOURCE
    interval_seconds = 3 * 3600  # a few submissions a week; the file is large, fetched conditionally

    def __init__(self, identity: Identity, *, url: str | None = None) -> None:
        """`url`: the `leaderboards.json` file itself; default LIVE_URL (the site's repository)."""
        self.identity = identity
        self.url = url or LIVE_URL
        self._seen: set[str] = set()

    @property
    def probe_url(self) -> str:
        """The file (for `leaderwatch doctor`)."""
        return self.url

    def boards(self) -> Sequence[Board]:
        """Verified (all agents), bash-only, the default view, Lite, Multilingual (not Full, Multimodal)."""
        return list(BOARDS)

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        """Fetch data/leaderboards.json from the site's repository; [] on 304.

        A board of the last fetch missing from this one is a ShapeError (reported once: the next
        fetch expects only what this one gave, besides the boards every file has, CORE).
        """
        body = await http.get(self.name, self.url)
        if body is None:
            return []
        now = utcnow()
        snapshots = parse_leaderboards(body, identity=self.identity, url=self.url, as_of=now, fetched_at=now)
        found = {s.board.id for s in snapshots}
        expected = [b for b in BOARDS if b in CORE or b.id in self._seen]
        self._seen = found
        check_boards(found, expected, source=SOURCE, url=self.url)
        return snapshots

    def recordings(self, root: Path) -> list[Recording]:
        """Recorded leaderboards.json and template data.json files, one Recording per file."""
        found: list[Recording] = []
        for folder, prefix, family in (
            ("swebench/leaderboards_json", "leaderboards_", FAMILY_LEADERBOARDS),
            ("swebench/template_data_json", "data_", FAMILY_TEMPLATE),
        ):
            for path, as_of in dated_files(root / folder, f"{prefix}*.json", _FILE_DATE, source=SOURCE):
                found.append(Recording(family, PRIORITY, _boards_in(path), as_of, path))
        return sorted(found, key=lambda r: (r.as_of, r.family))

    def load(self, recording: Recording) -> list[Snapshot]:
        """Parse one recorded file into one snapshot per listed board it holds."""
        if recording.family == FAMILY_LEADERBOARDS:
            origin = ORIGIN_LEADERBOARDS
        elif recording.family == FAMILY_TEMPLATE:
            origin = ORIGIN_TEMPLATE
        else:
            raise SourceError(self.name, str(recording.path), f"unknown family {recording.family}")
        return parse_leaderboards(
            read_recording(recording.path, source=SOURCE), identity=self.identity, url=str(recording.path),
            as_of=recording.as_of, fetched_at=recording.as_of, origin=origin,
        )
