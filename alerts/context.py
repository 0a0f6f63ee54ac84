"""What every rule sees of one update of a board (pure): the previous and current tables, renamed
models, a change of method, the models never seen before, and the board's memory of its models.

`Context` is computed once per update and shared by all rules; the engine (`rules`), the kinds
(`kinds`) and `explain` read it, never the other way round.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from leaderwatch.alerts.models import BoardState, RuleError
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group, canonical_key

RESHUFFLE_SHARE = 0.5
"""A snapshot where at least this share of the common models moved far counts as a change of method."""
SCALE_SHIFT = 0.1
"""...and so does one where the median score moved by this share of the median score."""


def describe(entry: Entry) -> str:
    """`DeepSeek-R1 (DeepSeek, CN)`."""
    if entry.mixed:
        where = "mixed origins"
    else:
        where = ", ".join(x for x in (entry.organization, entry.country) if x)
    return f"{entry.name} ({where})" if where else entry.name


def confidence_between(a: Entry, b: Entry, has_ci: bool) -> str:
    """`tied` when the two confidence intervals overlap, `clear` when they separate, else `n/a`."""
    if not has_ci or None in (a.ci_lower, a.ci_upper, b.ci_lower, b.ci_upper):
        return "n/a"
    assert a.ci_lower is not None and a.ci_upper is not None
    assert b.ci_lower is not None and b.ci_upper is not None
    return "tied" if a.ci_lower <= b.ci_upper and b.ci_lower <= a.ci_upper else "clear"


class Pairing(NamedTuple):
    """Two models compared on one board (a rule spanning boards): each one's best entry, None if unlisted."""

    board: str
    model: Entry | None
    rival: Entry | None


@dataclass
class Context:
    """What every rule needs from one (previous, current) pair, computed once for all rules."""

    prev: Snapshot | None
    curr: Snapshot
    groups: Mapping[str, Group]
    board_state: BoardState
    now: datetime
    elsewhere: Mapping[str, tuple[Pairing, ...]] = field(default_factory=dict)
    """For rules that span boards (`rival`): by the rule's span key, the two models it compares on each
    other board of its span, as that board's latest table lists them."""
    board: str = field(init=False)
    at_text: str = field(init=False)
    curr_by_key: dict[str, Entry] = field(init=False)
    prev_by_key: dict[str, Entry] = field(init=False)
    prev_entries: tuple[Entry, ...] = field(init=False)
    renames: dict[str, str] = field(init=False)  # old key -> new key
    split_off: frozenset[str] = field(init=False)
    _best: dict[tuple[str, bool], Entry | None] = field(default_factory=dict)
    _by_score: list[Entry] | None = None
    _score_keys: list[float] = field(default_factory=list)
    _score_changes: list[tuple[str, float | None]] | None = None
    move_messages: dict[str, str] = field(default_factory=dict)
    _moves: list[tuple[int, Entry, Entry]] | None = None
    _moves_by_key: dict[str, tuple[int, Entry, Entry]] | None = None
    _membership: dict[str, tuple[str, ...]] = field(default_factory=dict)
    changed: str | None = field(init=False)
    """Why this snapshot cannot be compared with the previous one (a change of method), or None."""
    baseline: bool = field(init=False)
    """The update only sets the rules' baseline: a board's first snapshot, or a change of method."""
    _bases: dict[str, str] | None = None
    _new_keys: list[str] | None = None
    _previous: Context | None = None

    def __post_init__(self) -> None:
        self.changed = method_change(self.prev, self.curr)
        self.baseline = self.prev is None or self.board_state.snapshots == 0 or self.changed is not None
        self.board = self.curr.board.id
        self.at_text = self.curr.as_of.isoformat()
        self._described: dict[str, str] = {}
        self.curr_by_key = {}
        for e in self.curr.entries:
            self.curr_by_key.setdefault(e.model_key, e)  # entries are in rank order: keep the best
        found = find_renames(self.prev, self.curr, self.board_state.seen)
        self.renames, self.split_off = found.keys, found.split_off
        # The previous table seen through the renames, so a renamed model keeps its history.
        self.prev_entries = tuple(
            replace(e, model_key=self.renames[e.model_key]) if e.model_key in self.renames else e
            for e in (self.prev.entries if self.prev else ()))
        self.prev_by_key = {}
        for e in self.prev_entries:
            self.prev_by_key.setdefault(e.model_key, e)

    def describe(self, entry: Entry) -> str:
        """`describe(entry)`, once per model and snapshot."""
        text = self._described.get(entry.name)
        if text is None:
            text = self._described[entry.name] = describe(entry)
        return text

    @property
    def has_ci(self) -> bool:
        """Whether the board publishes confidence intervals."""
        return self.curr.board.has_ci

    def group(self, name: str) -> Group:
        """A configured group by name; RuleError names the groups when it is not one."""
        try:
            return self.groups[name]
        except KeyError:
            raise RuleError(f"unknown group `{name}` (groups: {', '.join(sorted(self.groups))})") from None

    def best(self, group: str, previous: bool = False) -> Entry | None:
        """The best-ranked entry of a group (never a mixed entry for a country group)."""
        key = (group, previous)
        if key not in self._best:
            entries = self.prev_entries if previous else self.curr.entries
            g = self.group(group)
            self._best[key] = next((e for e in entries if g.contains(e)), None)
        return self._best[key]

    def groups_of(self, entry: Entry) -> tuple[str, ...]:
        """The names of the groups an entry belongs to."""
        found = self._membership.get(entry.model_key)
        if found is None:
            found = tuple(n for n, g in self.groups.items() if g.contains(entry))
            self._membership[entry.model_key] = found
        return found

    def by_score(self) -> list[Entry]:
        """Current entries from the best score to the worst."""
        if self._by_score is None:
            sign = -1 if self.curr.board.higher_is_better else 1
            self._by_score = sorted(self.curr_by_key.values(), key=lambda e: sign * e.score)
            self._score_keys = [sign * e.score for e in self._by_score]
        return self._by_score

    def score_changes(self) -> list[tuple[str, float | None]]:
        """(key, previous score or None when it was not listed) for models whose score changed."""
        if self._score_changes is None:
            self._score_changes = []
            for key, e in self.curr_by_key.items():
                before = self.prev_by_key.get(key)
                if before is None or before.score != e.score:
                    self._score_changes.append((key, before.score if before else None))
        return self._score_changes

    def past_threshold(self, threshold: float) -> list[str]:
        """Keys of the models at or past a score threshold (>= when higher is better), best first."""
        ordered = self.by_score()
        sign = -1 if self.curr.board.higher_is_better else 1
        cut = bisect.bisect_right(self._score_keys, sign * threshold)
        return [e.model_key for e in ordered[:cut]]

    def moves(self) -> list[tuple[int, Entry, Entry]]:
        """(places moved up, previous, current) for models in both snapshots, largest first.

        Places are counted among the models present in both, so an entrant that pushes everyone
        down one rank moves nobody (attribution: the entrant is the event, not the cascade).
        """
        if self._moves is None:
            common = [k for k in self.prev_by_key if k in self.curr_by_key] if self.prev else []
            keep = set(common)
            before = {k: i for i, k in enumerate(k for k in self.prev_by_key if k in keep)}
            after = {k: i for i, k in enumerate(k for k in self.curr_by_key if k in keep)}
            self._moves = sorted(((before[k] - after[k], self.prev_by_key[k], self.curr_by_key[k])
                                  for k in common), key=lambda m: -abs(m[0]))
        return self._moves

    def move_of(self, key: str) -> tuple[int, Entry, Entry]:
        """The move (`moves`) of the model with this key, which must be listed in both snapshots."""
        if self._moves_by_key is None:
            self._moves_by_key = {m[2].model_key: m for m in self.moves()}
        return self._moves_by_key[key]

    def last_listed_rank(self) -> int:
        """The worst rank a truncated table shows (absent models rank below it)."""
        return max((e.rank for e in self.curr.entries), default=0)

    def absent_value_known(self, needed_rank: int) -> bool:
        """Whether a model absent from the current table is known to rank past `needed_rank`."""
        return not self.curr.truncated or self.last_listed_rank() >= needed_rank

    def bases(self) -> dict[str, str]:
        """Each current model key's base key (`base_key`), computed once."""
        if self._bases is None:
            self._bases = {k: base_key(e) for k, e in self.curr_by_key.items()}
        return self._bases

    def new_keys(self) -> list[str]:
        """Models this board never listed before, best first: no rename, no run of a known model.

        One key per new base: the best-ranked run of a new model speaks for its other settings.
        """
        if self._new_keys is None:
            self._new_keys = []
            if not self.baseline:
                renamed = set(self.renames.values()) | self.split_off
                known, bases = self.board_state, self.bases()
                new_bases: set[str] = set()
                for k in self.curr_by_key:
                    if k in known.seen or k in renamed or bases[k] in known.bases:
                        continue
                    if bases[k] not in new_bases:
                        self._new_keys.append(k)
                    new_bases.add(bases[k])
        return self._new_keys

    def previous(self) -> Context:
        """The previous snapshot seen as a baseline of its own: where a rule with no state starts from."""
        assert self.prev is not None
        if self._previous is None:
            self._previous = Context(None, self.prev, self.groups, BoardState(), self.now, self.elsewhere)
        return self._previous

    def board_state_after(self) -> BoardState:
        """The board's memory once this snapshot is seen: its models and their bases added."""
        known = self.board_state
        return BoardState(known.seen | frozenset(self.curr_by_key), known.snapshots + 1,
                          known.bases | frozenset(self.bases().values()))


def leaders(entries: Sequence[Entry]) -> list[Entry]:
    """The entries ranked #1 (several when the board publishes a tie)."""
    if not entries:
        return []
    top = min(e.rank for e in entries)
    return [e for e in entries if e.rank == top]


_SUFFIX = re.compile(r"\s*\(([^()]*)\)\s*$")
# A parenthesised release date, version or size names another model, not a setting:
# "Claude 3.5 Sonnet (20241022)", "DeepSeek R1 (0528)", "Command R+ (08-24)", "Gopher (280B)".
_RELEASE = re.compile(r"^v?\d[\d.-]*(?:-[a-z]+)?$|^\d+(?:\.\d+)?[bm]$|(?:19|20)\d\d-?[01]\d-?[0-3]\d",
                      re.IGNORECASE)
# The part after a base that makes a dated release of it: "gpt-4" -> "gpt-4-0314", "claude-2" -> "-0".
_DATED = re.compile(r"^\d+(?:-\d+)*$")


_PRECISION = re.compile(r"-(bf16|fp8|fp16|int8|int4)$")


def base_key(entry: Entry) -> str:
    """A model's key without trailing settings: "claude-3.5-sonnet (whole)" -> claude-3-5-sonnet.

    Also without a precision suffix ("...-405b-instruct-bf16"); a name with nothing to strip keeps
    its canonical key, aliases included. A release in parentheses ("(20241022)") is no setting: kept.
    """
    return base_key_of(entry.name, entry.model_key)


def base_key_of(name: str, model_key: str) -> str:
    """`base_key` of a listed name and its canonical key."""
    stripped = name
    while (m := _SUFFIX.search(stripped)) and not _RELEASE.search(m.group(1).strip()):
        stripped = stripped[:m.start()]
    key = model_key if stripped == name else canonical_key(stripped or name)
    return _PRECISION.sub("", key)


@dataclass(frozen=True, slots=True)
class Renames:
    """Models renamed between two snapshots (old key -> new key), and names split off a renamed one."""

    keys: dict[str, str]
    split_off: frozenset[str]


def find_renames(prev: Snapshot | None, curr: Snapshot, seen: frozenset[str]) -> Renames:
    """Models renamed between two snapshots.

    A model that left a table it would still be listed in, while a never-seen name of the same
    organization appears with exactly the same score or the same name but for trailing settings
    ("gpt-4o" -> "gpt-4o-2024-05-13" at 72.9; "DeepSeek Coder V2 0724 (deprecated)" -> "DeepSeek
    Coder V2 0724"), was renamed: it is not a new model, and it keeps its state under the new key.
    Other runs of the same old name that reappear under new names (Aider's "openai/gpt-5" runs
    becoming "gpt-5 (high)", "gpt-5 (medium)", "gpt-5 (low)") are split off it, not new either.
    """
    if prev is None:
        return Renames({}, frozenset())
    curr_keys = {e.model_key for e in curr.entries}
    prev_keys = {e.model_key for e in prev.entries}
    listed_to = max((e.rank for e in curr.entries), default=0)
    runs: dict[str, list[Entry]] = {}
    for e in prev.entries:
        if e.model_key not in curr_keys and (not curr.truncated or e.rank < listed_to):
            runs.setdefault(e.model_key, []).append(e)
    fresh = [e for e in curr.entries if e.model_key not in prev_keys and e.model_key not in seen]
    if not runs or not fresh:
        return Renames({}, frozenset())

    def same_org(a: Entry, b: Entry) -> bool:
        return a.organization is None or b.organization is None or (
            a.organization.casefold() == b.organization.casefold())

    fresh_base = {e.model_key: base_key(e) for e in fresh}
    candidates: dict[str, list[str]] = {}
    split: set[str] = set()
    for old, old_runs in runs.items():
        best = old_runs[0]
        old_base = base_key(best)
        matches = list(dict.fromkeys(
            n.model_key for n in fresh if same_org(best, n)
            and (n.score == best.score or fresh_base[n.model_key] == old_base)))
        if not matches:  # upstream split a model into dated releases: "gpt-4" -> "gpt-4-0314", "-0613"
            dated = [n.model_key for n in fresh if same_org(best, n)
                     and fresh_base[n.model_key].startswith(old_base + "-")
                     and _DATED.match(fresh_base[n.model_key][len(old_base) + 1:])]
            if dated:
                matches = dated[:1]
                split.update(dated[1:])
        if len(matches) > 1:  # prefer the one with the same score
            same_score = [k for k in matches if any(n.model_key == k and n.score == best.score
                                                    for n in fresh)]
            same_base = [k for k in matches if fresh_base[k] == old_base]
            if len(same_score) == 1:
                matches = same_score
            elif same_base:  # runs under new settings ("-bf16", "-fp8"): the best-ranked is the rename
                matches = same_base[:1]
                split.update(same_base[1:])
        candidates[old] = matches
        split.update(n.model_key for n in fresh for r in old_runs[1:]
                     if n.score == r.score and same_org(r, n))
    keys: dict[str, str] = {}
    for old, m in candidates.items():  # runs are in rank order: the best-ranked claimant wins
        if len(m) == 1 and m[0] not in keys.values():
            keys[old] = m[0]
    return Renames(keys, frozenset(split - set(keys.values())) if keys else frozenset())


def method_change(prev: Snapshot | None, curr: Snapshot) -> str | None:
    """Why the current snapshot is not comparable with the previous one, or None.

    A new method or recording (origin), or most of the board moving at once: a new scoring
    system, or a switch between style-controlled and default ratings.
    """
    if prev is None:
        return None
    if prev.method and curr.method and prev.method != curr.method:
        return f"method {prev.method} -> {curr.method}"
    if prev.origin and curr.origin and prev.origin != curr.origin:
        return f"recording {prev.origin} -> {curr.origin}"
    prev_by = {e.model_key: e for e in reversed(prev.entries)}
    common = [e for e in curr.entries if e.model_key in prev_by]
    if len(common) < 10:
        return None
    shifts = sorted(abs(e.score - prev_by[e.model_key].score) for e in common)
    scale = sorted(abs(e.score) for e in common)[len(common) // 2] or 1.0
    if shifts[len(shifts) // 2] > SCALE_SHIFT * scale:
        return "most scores moved at once"
    common_keys = {c.model_key for c in common}
    order_prev = {k: i for i, k in enumerate(e.model_key for e in prev.entries if e.model_key in common_keys)}
    far = max(3, len(common) // 10)
    moved = sum(1 for i, e in enumerate(common) if abs(order_prev.get(e.model_key, i) - i) >= far)
    if moved >= RESHUFFLE_SHARE * len(common):
        return "most models changed places at once"
    return None
