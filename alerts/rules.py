"""The rules engine: from a board's previous and current standings, the events (pure, clock passed in).

Every rule kind but `new_model` and `rank_change` is a condition observed per subject (which group
leads a pair, whether a model is in the top N, ...). The engine keeps the last confirmed value per
subject (`RuleState`) and fires when a new value has been seen in `confirm` consecutive snapshots,
unless the same subject fired the same outcome less than `cooldown` ago: Alertmanager's
"needs update" decision, as data. A board's first snapshot, and a snapshot whose method changed,
only set the baseline.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from leaderwatch.alerts.models import BoardState, Event, Rule, RuleError, RuleState, dedupe_key
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


def _score(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def confidence_between(a: Entry, b: Entry, has_ci: bool) -> str:
    """`tied` when the two confidence intervals overlap, `clear` when they separate, else `n/a`."""
    if not has_ci or None in (a.ci_lower, a.ci_upper, b.ci_lower, b.ci_upper):
        return "n/a"
    assert a.ci_lower is not None and a.ci_upper is not None
    assert b.ci_lower is not None and b.ci_upper is not None
    return "tied" if a.ci_lower <= b.ci_upper and b.ci_lower <= a.ci_upper else "clear"


@dataclass
class Context:
    """What every rule needs from one (previous, current) pair, computed once for all rules."""

    prev: Snapshot | None
    curr: Snapshot
    groups: Mapping[str, Group]
    board_state: BoardState
    now: datetime
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
    _membership: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
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
        return self.curr.board.has_ci

    def group(self, name: str) -> Group:
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

    def last_listed_rank(self) -> int:
        """The worst rank a truncated table shows (absent models rank below it)."""
        return max((e.rank for e in self.curr.entries), default=0)

    def absent_value_known(self, needed_rank: int) -> bool:
        """Whether a model absent from the current table is known to rank past `needed_rank`."""
        return not self.curr.truncated or self.last_listed_rank() >= needed_rank


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


def _rename(text: str, renames: Mapping[str, str]) -> str:
    return ",".join(renames.get(t, t) for t in text.split(","))


def rekey(state: RuleState, renames: Mapping[str, str]) -> RuleState:
    """A rule's state with renamed models under their new keys (subjects and leader values)."""
    if not renames:
        return state

    def fired_key(key: str) -> str:
        subject, _, value = key.partition("=")
        return f"{renames.get(subject, subject)}={_rename(value, renames)}"

    return RuleState(
        {renames.get(k, k): _rename(v, renames) for k, v in state.confirmed.items()},
        {renames.get(k, k): (_rename(v, renames), n) for k, (v, n) in state.streak.items()},
        {fired_key(k): t for k, t in state.last_fired.items()},
    )


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


@dataclass
class Observation:
    """A condition's value for one subject, with what an event would need to say."""

    value: str
    entry: Entry | None = None
    other: Entry | None = None
    confidence: str = "n/a"
    groups: tuple[str, ...] = ()


class _Machine:
    """The per-subject confirm/cooldown state machine of one rule on one board.

    The state's mappings are copied on first write only: most rules change nothing on most
    snapshots, and a thousand rules must evaluate in a few milliseconds each at most.
    """

    def __init__(self, rule: Rule, state: RuleState, ctx: Context) -> None:
        self.rule, self.ctx = rule, ctx
        self.confirmed: Mapping[str, str] = state.confirmed
        self.streak: Mapping[str, tuple[str, int]] = state.streak
        self.last_fired: Mapping[str, datetime] = state.last_fired
        self._owned: set[str] = set()
        self.confirm: int = rule.values.get("confirm", 1)  # rank_change has none: one move is enough
        self.cooldown = rule.get("cooldown")

    def _confirmed(self) -> dict[str, str]:
        if "confirmed" not in self._owned:
            self.confirmed = dict(self.confirmed)
            self._owned.add("confirmed")
        assert isinstance(self.confirmed, dict)
        return self.confirmed

    def _streak(self) -> dict[str, tuple[str, int]]:
        if "streak" not in self._owned:
            self.streak = dict(self.streak)
            self._owned.add("streak")
        assert isinstance(self.streak, dict)
        return self.streak

    def _fired(self) -> dict[str, datetime]:
        if "fired" not in self._owned:
            self.last_fired = dict(self.last_fired)
            self._owned.add("fired")
        assert isinstance(self.last_fired, dict)
        return self.last_fired

    def reset(self) -> None:
        """Forget every confirmed value (a baseline of a kind whose subjects are models)."""
        self.confirmed = {}
        self._owned.add("confirmed")

    def baseline(self, subject: str, value: str, default: str | None) -> None:
        if subject in self.streak:
            self._streak().pop(subject)
        self._set(subject, value, default)

    def _set(self, subject: str, value: str, default: str | None) -> None:
        if value == default:  # keep the state small: defaults are not stored
            if subject in self.confirmed:
                self._confirmed().pop(subject)
        elif self.confirmed.get(subject) != value:
            self._confirmed()[subject] = value

    def step(self, subject: str, value: str, default: str | None) -> str | None:
        """The previously confirmed value when `value` is now confirmed and may fire, else None."""
        confirmed = self.confirmed.get(subject, default)
        if confirmed is None:
            self._set(subject, value, default)
            return None
        if value == confirmed:
            if subject in self.streak:
                self._streak().pop(subject)
            return None
        seen, count = self.streak.get(subject, (value, 0))
        count = count + 1 if seen == value else 1
        if count < self.confirm:
            self._streak()[subject] = (value, count)
            return None
        if subject in self.streak:
            self._streak().pop(subject)
        self._set(subject, value, default)
        return confirmed

    def cooled(self, subject: str, value: str) -> bool:
        """True (and remembered) when this outcome may fire now; False inside its cooldown."""
        key = f"{subject}={value}"
        last = self.last_fired.get(key)
        if last is not None and self.ctx.now - last < self.cooldown:
            return False
        self._fired()[key] = self.ctx.now
        return True

    def state(self, previous: RuleState) -> RuleState:
        if not self._owned and not self.last_fired:
            return previous
        # Forget cooldowns long past so the state does not grow without bound.
        fired = {k: t for k, t in self.last_fired.items() if self.ctx.now - t < self.cooldown}
        return RuleState(self.confirmed, self.streak, fired)


# Parameters that change what an outcome means, so they are part of the dedupe key: `score
# threshold=80` and `threshold=90` crossed in one update are two alerts, while `overtake` and
# `overtake confidence=clear` finding the same pass are one event.
_MEANING = {"top_n": ("top",), "score": ("threshold",), "gap": ("threshold", "unit")}


def _event(rule: Rule, ctx: Context, subject: str, value: str, message: str, *, entry: Entry | None,
           other: Entry | None = None, groups: Iterable[str] = (), confidence: str = "n/a",
           kind: str | None = None) -> Event:
    before = ctx.prev_by_key.get(entry.model_key) if entry else None
    listed = entry is not None and entry.model_key in ctx.curr_by_key
    kind = kind or rule.kind
    return Event(
        kind=kind, board=ctx.board, at=ctx.curr.as_of, rule=rule.name, subject=subject,
        model=entry.name if entry else None, other=other.name if other else None,
        groups=tuple(groups), rank_before=before.rank if before else None,
        rank_after=entry.rank if listed and entry else None,
        score_before=before.score if before else None,
        score_after=entry.score if listed and entry else None,
        confidence=confidence, message=f"{ctx.board}: {message}",
        dedupe_key=dedupe_key(kind, ctx.board, subject, value, ctx.at_text),
    )


# --- observations per kind ------------------------------------------------------------------------

def _observe_overtake(rule: Rule, ctx: Context) -> dict[str, Observation]:
    a, b = rule.get("groups")
    best_a, best_b = ctx.best(a), ctx.best(b)
    if best_a is None or best_b is None or best_a.rank == best_b.rank:
        return {}  # a group absent, or a published tie: nothing is observed
    leader, other, lead = (best_a, best_b, a) if best_a.rank < best_b.rank else (best_b, best_a, b)
    conf = confidence_between(leader, other, ctx.has_ci)
    return {f"{a}|{b}": Observation(lead, leader, other, conf, (a, b))}


def _leaders(entries: Sequence[Entry]) -> list[Entry]:
    if not entries:
        return []
    top = min(e.rank for e in entries)
    return [e for e in entries if e.rank == top]


def _observe_leader(rule: Rule, ctx: Context, machine: _Machine) -> dict[str, Observation]:
    leaders = _leaders(ctx.curr.entries)
    if not leaders:
        return {}
    keys = sorted({e.model_key for e in leaders})
    old = _leaders(ctx.prev_entries)
    confirmed = machine.confirmed.get("leader")
    if confirmed:  # with confirm=K or confidence=clear, the leader last reported may be older than prev
        known = [ctx.curr_by_key.get(k) or ctx.prev_by_key.get(k) for k in confirmed.split(",")]
        old = [e for e in known if e is not None] or old
    new = [e for e in leaders if e.model_key not in {o.model_key for o in old}]
    conf = "tied" if len(keys) > 1 else "n/a"
    if len(keys) == 1 and old:
        rival = ctx.curr_by_key.get(old[0].model_key)
        if rival is not None and rival.model_key != leaders[0].model_key:
            conf = confidence_between(leaders[0], rival, ctx.has_ci)
        elif ctx.has_ci and len(ctx.curr.entries) > 1:
            conf = confidence_between(leaders[0], ctx.curr.entries[1], True)
    first = new[0] if new else leaders[0]
    other = next((ctx.curr_by_key.get(o.model_key) or o for o in old if o.model_key != first.model_key),
                 None)
    return {"leader": Observation(",".join(keys), first, other, conf, ctx.groups_of(first))}


def _observe_top_n(rule: Rule, ctx: Context, machine: _Machine) -> dict[str, Observation]:
    n, margin = rule.get("top"), rule.get("margin")
    group = ctx.group(rule.get("group")) if rule.get("group") else None
    out: dict[str, Observation] = {}
    for e in ctx.curr.entries:
        if e.rank > n + margin:
            break
        if e.model_key in out or (group and not group.contains(e)):
            continue
        was_in = machine.confirmed.get(e.model_key) == "in"
        inside = e.rank <= (n + margin if was_in else n)
        out[e.model_key] = Observation("in" if inside else "out", e)
    for key, value in machine.confirmed.items():
        if value != "in" or key in out:
            continue
        listed = ctx.curr_by_key.get(key)
        if listed is not None:
            out[key] = Observation("out", listed)  # listed, past N + margin
        elif ctx.absent_value_known(n + margin):
            gone = ctx.prev_by_key.get(key)
            out[key] = Observation("out", gone)
    return out


def _gap_value(rule: Rule, ctx: Context) -> tuple[float, Entry, Entry] | None:
    a, b = rule.get("groups")
    best_a, best_b = ctx.best(a), ctx.best(b)
    if best_a is None or best_b is None:
        return None
    gap = abs(best_a.score - best_b.score)
    if rule.get("unit") == "percent":
        gap = 100 * gap / (max(abs(best_a.score), abs(best_b.score)) or 1.0)
    return gap, best_a, best_b


def _observe_gap(rule: Rule, ctx: Context) -> dict[str, Observation]:
    found = _gap_value(rule, ctx)
    if found is None:
        return {}
    gap, best_a, best_b = found
    a, b = rule.get("groups")
    value = "below" if gap < rule.get("threshold") else "above"
    return {f"{a}|{b}": Observation(value, best_a, best_b, "n/a", (a, b))}


def _observe_score(rule: Rule, ctx: Context, machine: _Machine, full: bool = False
                   ) -> dict[str, Observation]:
    """Subjects whose side of the threshold may have changed (`full`: every model past it, for a
    baseline)."""
    threshold: float = rule.get("threshold")
    group = ctx.group(rule.get("group")) if rule.get("group") else None
    higher = ctx.curr.board.higher_is_better

    def side(e: Entry) -> str:
        return "above" if (e.score >= threshold if higher else e.score <= threshold) else "below"

    wanted = rule.get("model")
    if wanted:
        key = canonical_key(wanted)
        e = ctx.curr_by_key.get(key) or next((x for x in ctx.curr.entries if x.name == wanted), None)
        return {e.model_key: Observation(side(e), e)} if e else {}
    if full:  # a baseline: every model past the threshold now
        past = ctx.past_threshold(threshold)
        return {k: Observation("above", ctx.curr_by_key[k]) for k in past
                if group is None or group.contains(ctx.curr_by_key[k])}
    # Between baselines the confirmed sides follow the snapshots, so only a model whose score
    # changed across the threshold, one back on the table, or one mid-confirmation needs a step.
    out: dict[str, Observation] = {}
    for key, before_score in ctx.score_changes():
        e = ctx.curr_by_key[key]
        if before_score is not None:
            was = before_score >= threshold if higher else before_score <= threshold
            if (side(e) == "above") == was and key not in machine.streak:
                continue
        if group is None or group.contains(e):
            out[key] = Observation(side(e), e)
    for key in machine.streak.keys() - out.keys():
        e = ctx.curr_by_key.get(key)
        if e is not None:
            out[key] = Observation(side(e), e)
    return out


# --- messages -------------------------------------------------------------------------------------

def _message(rule: Rule, ctx: Context, obs: Observation, before: str) -> str | None:
    e, o = obs.entry, obs.other
    conf = {"clear": "", "tied": " (statistically tied: the confidence intervals overlap)",
            "n/a": ""}[obs.confidence]
    kind = rule.kind
    if kind == "overtake" and e and o:
        return (f"{obs.value} model {ctx.describe(e)} now ranks above the best {before} model "
                f"{ctx.describe(o)}: #{e.rank} vs #{o.rank}, {_score(e.score)} vs {_score(o.score)}{conf}")
    if kind == "new_leader" and e:
        if "," in obs.value:
            # The leaders as the board names them (the value holds their keys).
            shared = ", ".join(ctx.curr_by_key[k].name if k in ctx.curr_by_key else k
                               for k in obs.value.split(","))
            return f"{ctx.describe(e)} now shares #1 ({shared}), score {_score(e.score)}"
        was = f", taking it from {ctx.describe(o)}" if o else ""
        return f"new #1: {ctx.describe(e)} with {_score(e.score)}{was}{conf}"
    if kind == "top_n" and e:
        n = rule.get("top")
        prev = ctx.prev_by_key.get(e.model_key)
        if obs.value == "in":
            was = f", was #{prev.rank}" if prev else ", new on the board"
            return f"{ctx.describe(e)} entered the top {n} at #{e.rank}{was}"
        now = f"now #{e.rank}" if e.model_key in ctx.curr_by_key else "no longer listed"
        return f"{ctx.describe(e)} left the top {n} ({now})"
    if kind == "gap" and e and o:
        found = _gap_value(rule, ctx)
        unit = "%" if rule.get("unit") == "percent" else " points"
        gap = f"{found[0]:.1f}{unit}" if found else "?"
        a, b = rule.get("groups")
        word = "fell below" if obs.value == "below" else "rose above"
        return (f"the gap between the best {a} model {ctx.describe(e)} ({_score(e.score)}) and the best "
                f"{b} model {ctx.describe(o)} ({_score(o.score)}) {word} {_score(rule.get('threshold'))}"
                f"{unit}: {gap}")
    if kind == "score" and e:
        # "above" is the side past the threshold: the lower scores on a lower-is-better board.
        word = {("above", True): "rose to or above", ("below", True): "fell below",
                ("above", False): "fell to or below", ("below", False): "rose above"}[
            obs.value, ctx.curr.board.higher_is_better]
        return f"{ctx.describe(e)} {word} {_score(rule.get('threshold'))}: now {_score(e.score)}"
    return None


def _reportable(rule: Rule, before: str, after: str, obs: Observation, ctx: Context) -> bool:
    kind = rule.kind
    if kind == "new_leader":
        old = set(before.split(","))
        new = set(after.split(",")) - old
        if not new:
            return False  # a co-leader fell back: the remaining leader led already
        group: str | None = rule.get("group")
        return group is None or any(group in ctx.groups_of(ctx.curr_by_key[k])
                                    for k in new if k in ctx.curr_by_key)
    direction: str | None = rule.values.get("direction")
    if kind == "top_n" and direction in ("enter", "leave"):
        return (after == "in") == (direction == "enter")
    if kind in ("gap", "score") and direction in ("below", "above"):
        return after == direction
    return True


_DEFAULTS: dict[str, str | None] = {"overtake": None, "new_leader": None, "gap": None,
                                     "top_n": "out", "score": "below"}


def _evaluate_condition(rule: Rule, ctx: Context, state: RuleState, baseline: bool
                        ) -> tuple[list[Event], RuleState]:
    machine = _Machine(rule, state, ctx)
    if rule.kind == "overtake":
        observed = _observe_overtake(rule, ctx)
    elif rule.kind == "new_leader":
        observed = _observe_leader(rule, ctx, machine)
    elif rule.kind == "gap":
        observed = _observe_gap(rule, ctx)
    elif rule.kind == "top_n":
        observed = _observe_top_n(rule, ctx, machine)
    else:
        observed = _observe_score(rule, ctx, machine, full=baseline)
    default = _DEFAULTS[rule.kind]
    events: list[Event] = []
    if baseline:
        if rule.kind in ("top_n", "score"):
            machine.reset()
        for subject, obs in observed.items():
            machine.baseline(subject, obs.value, default)
        return events, machine.state(state)
    # `confidence=clear`: a tied observation neither fires nor moves the state, so the change is
    # reported once the intervals separate; a baseline records it whatever the confidence.
    clear_only = rule.values.get("confidence") == "clear"
    meaning = "".join(f"|{p}={rule.values[p]}" for p in _MEANING.get(rule.kind, ()))
    for subject, obs in observed.items():
        if clear_only and obs.confidence == "tied":
            continue
        before = machine.step(subject, obs.value, default)
        if before is None or not _reportable(rule, before, obs.value, obs, ctx):
            continue
        if not machine.cooled(subject, obs.value):
            continue
        message = _message(rule, ctx, obs, before)
        if message:
            groups = obs.groups or (ctx.groups_of(obs.entry) if obs.entry else ())
            events.append(_event(rule, ctx, subject, obs.value + meaning, message, entry=obs.entry,
                                 other=obs.other, groups=groups, confidence=obs.confidence))
    return events, machine.state(state)


def _evaluate_new_model(rule: Rule, ctx: Context, new_keys: Sequence[str]) -> list[Event]:
    top, org = rule.get("top"), rule.get("organization")
    group = ctx.group(rule.get("group")) if rule.get("group") else None
    events = []
    for key in new_keys:
        e = ctx.curr_by_key[key]
        if top is not None and e.rank > top:
            continue
        if group is not None and not group.contains(e):
            continue
        if org is not None and (e.organization or "").casefold() != org.casefold():
            continue
        where = f"top {top}" if top else "board"
        message = f"new model {ctx.describe(e)} entered the {where} at #{e.rank} with {_score(e.score)}"
        events.append(_event(rule, ctx, key, "new", message, entry=e, groups=ctx.groups_of(e)))
    return events


def _evaluate_rank_change(rule: Rule, ctx: Context, state: RuleState) -> tuple[list[Event], RuleState]:
    machine = _Machine(rule, state, ctx)
    by, top = rule.get("by"), rule.get("top")
    events = []
    for moved, before, after in ctx.moves():
        if abs(moved) < by:
            break
        if top is not None and min(before.rank, after.rank) > top:
            continue
        value = "up" if moved > 0 else "down"
        if not machine.cooled(after.model_key, value):
            continue
        message = ctx.move_messages.get(after.model_key)
        if message is None:  # the same move seen by several rank_change rules: say it once
            message = ctx.move_messages[after.model_key] = (
                f"{ctx.describe(after)} {'passed' if moved > 0 else 'fell behind'} {abs(moved)} of the "
                f"models listed in both updates (rank as published: #{before.rank} -> #{after.rank})")
        events.append(_event(rule, ctx, after.model_key, value, message, entry=after,
                             groups=ctx.groups_of(after)))
    return events, machine.state(state)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The events of one snapshot and the states to carry to the next one."""

    events: tuple[Event, ...]
    rule_states: Mapping[str, RuleState]
    board_state: BoardState
    changed: str | None


def evaluate(prev: Snapshot | None, curr: Snapshot, rules: Sequence[Rule],
             states: Mapping[str, RuleState], board_state: BoardState, groups: Mapping[str, Group],
             now: datetime) -> Evaluation:
    """All events the rules find going from `prev` to `curr` on one board.

    `states` maps rule names to their state on this board; `now` is the evaluation time (the
    snapshot's as-of time in a replay). The first snapshot and a change of method set baselines.
    """
    ctx = Context(prev, curr, groups, board_state, now)
    changed = method_change(prev, curr)
    baseline = prev is None or board_state.snapshots == 0 or changed is not None
    renamed = set(ctx.renames.values()) | ctx.split_off
    bases = {k: base_key(e) for k, e in ctx.curr_by_key.items()}
    new_keys: list[str] = []
    if not baseline:
        new_bases: set[str] = set()
        for k in ctx.curr_by_key:  # in rank order: the best run of a new model speaks for it
            if k in board_state.seen or k in renamed or bases[k] in board_state.bases:
                continue
            if bases[k] not in new_bases:
                new_keys.append(k)
            new_bases.add(bases[k])
    events: list[Event] = []
    new_states: dict[str, RuleState] = {}
    prev_ctx: Context | None = None
    for rule in rules:
        state = rekey(states.get(rule.name, RuleState()), ctx.renames)
        if rule.kind == "board_changed":
            if changed is not None:
                events.append(_event(rule, ctx, "method", changed,
                                     f"the board changed ({changed}); per-model alerts pause for "
                                     "this update", entry=None, kind="board_changed"))
            continue
        if rule.kind == "new_model":
            if not baseline:
                events.extend(_evaluate_new_model(rule, ctx, new_keys))
            continue
        if rule.kind == "rank_change":
            if baseline:
                new_states[rule.name] = state
                continue
            found, new_states[rule.name] = _evaluate_rank_change(rule, ctx, state)
            events.extend(found)
            continue
        if rule.name not in states and not baseline and prev is not None:
            # A rule with no state yet (just subscribed, or history imported without the rules)
            # takes the previous snapshot as its baseline, so this update is judged like any other.
            if prev_ctx is None:
                prev_ctx = Context(None, prev, groups, BoardState(), now)
            state = rekey(_evaluate_condition(rule, prev_ctx, RuleState(), True)[1], ctx.renames)
        found, new_states[rule.name] = _evaluate_condition(rule, ctx, state, baseline)
        events.extend(found)
    seen = board_state.seen | frozenset(ctx.curr_by_key)
    known = BoardState(seen, board_state.snapshots + 1, board_state.bases | frozenset(bases.values()))
    return Evaluation(tuple(events), new_states, known, changed)
