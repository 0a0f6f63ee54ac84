"""One story, one thread: which earlier alert an event follows up, and how that first alert reads after it.

An alert opens a story in its channel under each of its keys (`story_keys`): the board, kind and
subject it is about (`lmarena/text|overtake|china|west`), and for the kinds about one model, that model
on that board (`lmarena/text|model|Qwen2-VL-72B`). A later event of the same channel that shares a key
while the story is open (it moved in the last `STORY_WINDOW`) is a follow-up: it is posted in the
thread of the first alert, and the first alert is edited to show how the story stands (`update_line`):
the overtake reversed, the model that entered the top 10 reaching #1, a `share` falling back.
"""

from __future__ import annotations

from datetime import timedelta

from leaderwatch.alerts.models import Event
from leaderwatch.alerts.texts import day

STORY_WINDOW = timedelta(days=30)
"""A story with no new event for this long is closed: the next event about it starts a new one."""

MODEL_KINDS = frozenset({"new_model", "top_n", "rank_change", "new_leader"})
"""Kinds whose events are about one model: they share that model's story on the board. An overtake
names a model too, but it is news about a pair of groups: it stays in its own story."""

NO_STORY = frozenset({"report"})
"""Kinds that never thread (the weekly race report)."""

MAX_UPDATES = 5
"""The edited first alert lists at most this many updates (the latest ones); the thread has them all."""


def story_keys(event: Event) -> tuple[str, ...]:
    """The stories an event belongs to, its own first."""
    if event.kind in NO_STORY:
        return ()
    keys = [f"{event.board}|{event.kind}|{event.subject}"]
    if event.model and event.kind in MODEL_KINDS:
        keys.append(f"{event.board}|model|{event.model}")
    return tuple(dict.fromkeys(keys))


def _what(follow: Event) -> str:
    return follow.message.removeprefix(f"{follow.board}: ")


def update_label(root: Event, follow: Event) -> str:
    """How a follow-up changes the story the first alert told: `Reversed`, `Confirmed`, `Reached #1`...

    The same rule kind on the same subject: the same outcome again confirms it (a `confirm=K` rule
    after a quicker one, a cooldown ended), another outcome reverses it (the other group leads again,
    the share fell back, the model left the top N). Across kinds on one model: reaching #1, moving.
    """
    if follow.kind == root.kind and follow.subject == root.subject:
        if follow.value and follow.value == root.value:
            return "Confirmed"
        if root.kind == "new_leader":
            return "#1 changed hands"
        return "Reversed"
    if follow.kind == "new_leader":
        return "Reached #1"
    if follow.kind == "rank_change":
        return "Moved"
    if follow.kind == "top_n":
        return "Left the top" if follow.value == "out" else "Entered the top"
    return "Update"


def update_line(root: Event, follow: Event) -> str:
    """One line of the edited first alert: `Reversed on 2025-02-06: china model ... now ranks above ...`."""
    return f"{update_label(root, follow)} on {day(follow.at)}: {_what(follow)}"


def status(root: Event, follow_ups: list[Event]) -> str:
    """How the story stands after its latest follow-up, for the first alert's title: `reversed on
    2025-02-06`; "" before any."""
    if not follow_ups:
        return ""
    last = follow_ups[-1]
    label = update_label(root, last)
    return f"{label[0].lower()}{label[1:]} on {day(last.at)}"


def update_lines(root: Event, follow_ups: list[Event]) -> list[str]:
    """The lines an edited first alert shows, oldest first: the last `MAX_UPDATES`, and how many came
    before them."""
    lines = [update_line(root, f) for f in follow_ups[-MAX_UPDATES:]]
    earlier = len(follow_ups) - MAX_UPDATES
    if earlier > 0:
        lines.insert(0, f"… {earlier} earlier update(s) in the thread")
    return lines
