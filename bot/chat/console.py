"""Terminal output: board tables, board lists, changes seen by `run`, and answers (charts as files)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from leaderwatch.alerts.formatting import Reply, num
from leaderwatch.alerts.models import Event
from leaderwatch.bot.chat.common import image_filename
from leaderwatch.bot.commands.messages import country
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.storage.snapshots import BoardSummary
from leaderwatch.storage.status import SourceStatus


def _ci(entry: Entry) -> str:
    if entry.ci_lower is None or entry.ci_upper is None:
        return ""
    return f"+{num(entry.ci_upper - entry.score)}/-{num(entry.score - entry.ci_lower)}"


def table(snapshot: Snapshot, entries: Sequence[Entry], title_note: str = "") -> str:
    """A board's rows as an aligned text table."""
    board = snapshot.board
    shown = f", lists only a top {len(snapshot.entries)}" if snapshot.truncated else ""
    head = (f"{board.id} ({board.title}) as of {snapshot.as_of:%Y-%m-%d}"
            f" [{snapshot.origin or 'live'}{shown}]{title_note}\nscore: {board.metric}")
    cols = ["rank", "model", "score", "organization", "country", "licence"]
    has_ci = any(e.ci_lower is not None for e in entries)
    has_votes = any(e.votes is not None for e in entries)
    if has_ci:
        cols.insert(3, "95% CI")
    if has_votes:
        cols.append("votes")
    rows = []
    for e in entries:
        licence = "open" if e.open_weights else "proprietary" if e.open_weights is False else "?"
        row = [str(e.rank), e.name, num(e.score), e.organization or "?", country(e, detailed=True), licence]
        if has_ci:
            row.insert(3, _ci(e))
        if has_votes:
            row.append("" if e.votes is None else str(e.votes))
        rows.append(row)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = {0, 2}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([head, line(cols), line(["-" * w for w in widths]), *map(line, rows)])


def boards_table(summaries: Sequence[BoardSummary], statuses: dict[str, SourceStatus]) -> str:
    """`leaderwatch boards`: each board with last update, entry count and its source's status."""
    cols = ["board", "last update", "entries", "snapshots", "status"]
    rows = []
    for s in summaries:
        st = statuses.get(s.board.source)
        state = "archived" if s.board.archived else (st.status if st else "not polled yet")
        if st and st.status != "ok" and st.last_error:
            state += f": {st.last_error[:60]}"
        rows.append([s.board.id, f"{s.last_as_of:%Y-%m-%d}" if s.last_as_of else "-", str(s.entries),
                     str(s.snapshots), state])
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*cols), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*r).rstrip() for r in rows)])


def print_change(stored: Stored) -> None:
    """What `run` prints when a board changes and no chat platform is configured."""
    snap = stored.snapshot
    leader = snap.entries[0] if snap.entries else None
    lead = f"; #1 {leader.name} ({num(leader.score)})" if leader else ""
    print(f"[{snap.board.id}] new standings as of {snap.as_of:%Y-%m-%d %H:%M} UTC: "
          f"{len(snap.entries)} rows{lead}", file=sys.stdout, flush=True)


ProgressFn = Callable[[int, int, str], None]


def progress_printer(stream: TextIO) -> ProgressFn:
    """A progress bar on a terminal; a line every 10% otherwise (logs, CI)."""
    tty = stream.isatty()
    last = [-1]

    def show(done: int, total: int, label: str) -> None:
        pct = 100 * done // max(total, 1)
        if tty:
            bar = "#" * (pct // 4)
            end = "\n" if done == total else ""
            stream.write(f"\r[{bar:<25}] {done}/{total} {label[-40:]:<40}{end}")
            stream.flush()
        elif pct // 10 != last[0] or done == total:
            last[0] = pct // 10
            stream.write(f"{done}/{total} recordings ({pct}%)\n")
            stream.flush()

    return show


def print_event(event: Event) -> None:
    """What `run` prints for an event when no chat platform is configured."""
    conf = f" [{event.confidence}]" if event.confidence != "n/a" else ""
    print(f"** {event.kind}{conf}: {event.message}", file=sys.stdout, flush=True)


def render_reply(reply: Reply) -> str:
    """A command's answer as terminal text."""
    return ("error: " if reply.error else "") + reply.plain()


def write_image(reply: Reply, folder: Path) -> Path | None:
    """Save the answer's chart in `folder` as a PNG named from its title (board and dates); its path."""
    if reply.image is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / image_filename(reply)
    path.write_bytes(reply.image)
    return path
