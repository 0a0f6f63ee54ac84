"""The rules engine: from a board's previous and current standings, the events (pure, clock passed in).

Each rule runs through `evaluate_rule`. Its kind observes a value per subject (which group leads a
pair, whether a model is in the top N, ...); for a condition kind the engine keeps the last confirmed
value per subject (`RuleState`) and fires when a new value has been seen in `confirm` consecutive
snapshots, the kind reports that change, and the same subject did not fire the same outcome less
than `cooldown` ago: Alertmanager's "needs update" decision, as data. Occurrence kinds (a new
model, a move, a change of method) skip the confirmation. A board's first snapshot, and a snapshot
whose method changed, only set the baseline. Every decision is recorded in a `Trace`, which is what
`explain` shows for `/leaderwatch why`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from leaderwatch.alerts.context import Context, Pairing
from leaderwatch.alerts.kinds.base import Judged, Memory, Outcome, Trace
from leaderwatch.alerts.models import BoardState, Event, Rule, RuleState, dedupe_key
from leaderwatch.sources.base import Entry, Snapshot
from leaderwatch.sources.identity import Group

V = TypeVar("V")


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


class _Draft(Generic[V]):
    """A mapping of the state, copied on its first write only.

    Most rules change nothing on most snapshots, and a thousand rules must evaluate in a few
    milliseconds each at most: a rule that only reads its state shares it.
    """

    __slots__ = ("view", "changed")

    def __init__(self, base: Mapping[str, V]) -> None:
        self.view: Mapping[str, V] = base
        self.changed = False

    def edit(self) -> dict[str, V]:
        """The mapping, now the draft's own copy."""
        if not self.changed:
            self.view = dict(self.view)
            self.changed = True
        assert isinstance(self.view, dict)
        return self.view


class _Machine:
    """The per-subject confirm/cooldown state machine of one rule on one board."""

    def __init__(self, confirm: int, cooldown: timedelta, state: RuleState, now: datetime) -> None:
        self.confirm, self.cooldown, self.now = confirm, cooldown, now
        self.confirmed = _Draft(state.confirmed)
        self.streak = _Draft(state.streak)
        self.last_fired = _Draft(state.last_fired)

    def reset(self) -> None:
        """Forget every confirmed value (a baseline of a kind whose subjects are models)."""
        self.confirmed.view = {}
        self.confirmed.changed = True

    def baseline(self, subject: str, value: str, default: str | None) -> None:
        """Record `value` as the subject's confirmed value, whatever it was."""
        if subject in self.streak.view:
            self.streak.edit().pop(subject)
        self._set(subject, value, default)

    def _set(self, subject: str, value: str, default: str | None) -> None:
        if value == default:  # keep the state small: defaults are not stored
            if subject in self.confirmed.view:
                self.confirmed.edit().pop(subject)
        elif self.confirmed.view.get(subject) != value:
            self.confirmed.edit()[subject] = value

    def step(self, subject: str, value: str, default: str | None) -> tuple[str | None, Outcome, int]:
        """(the value confirmed before, what became of `value`, how many snapshots in a row showed it).

        CHANGED: `value` is now confirmed and may fire.
        """
        confirmed = self.confirmed.view.get(subject, default)
        if confirmed is None:
            self._set(subject, value, default)
            return None, Outcome.FIRST, 1
        if value == confirmed:
            if subject in self.streak.view:
                self.streak.edit().pop(subject)
            return confirmed, Outcome.UNCHANGED, 0
        seen, count = self.streak.view.get(subject, (value, 0))
        count = count + 1 if seen == value else 1
        if count < self.confirm:
            self.streak.edit()[subject] = (value, count)
            return confirmed, Outcome.WAITING, count
        if subject in self.streak.view:
            self.streak.edit().pop(subject)
        self._set(subject, value, default)
        return confirmed, Outcome.CHANGED, count

    def cooling_since(self, subject: str, value: str) -> datetime | None:
        """When this outcome last fired if that is less than the cooldown ago; else None, and it fires now."""
        if not self.cooldown:
            return None  # nothing to hold back, nor to remember
        key = f"{subject}={value}"
        last = self.last_fired.view.get(key)
        if last is not None and self.now - last < self.cooldown:
            return last
        self.last_fired.edit()[key] = self.now
        return None

    def state(self, previous: RuleState) -> RuleState:
        """The state to carry to the next snapshot (`previous` itself when nothing changed)."""
        drafts = (self.confirmed, self.streak, self.last_fired)
        if not any(d.changed for d in drafts) and not self.last_fired.view:
            return previous
        # Forget cooldowns long past so the state does not grow without bound.
        fired = {k: t for k, t in self.last_fired.view.items() if self.now - t < self.cooldown}
        return RuleState(self.confirmed.view, self.streak.view, fired)


def _event(rule: Rule, ctx: Context, subject: str, value: str, message: str, *, entry: Entry | None,
           other: Entry | None = None, groups: Iterable[str] = (), confidence: str = "n/a") -> Event:
    before = ctx.prev_by_key.get(entry.model_key) if entry else None
    listed = entry is not None and entry.model_key in ctx.curr_by_key
    kind = rule.kind
    return Event(
        kind=kind, board=ctx.board, at=ctx.curr.as_of, rule=rule.name, subject=subject,
        model=entry.name if entry else None, other=other.name if other else None,
        groups=tuple(groups), rank_before=before.rank if before else None,
        rank_after=entry.rank if listed and entry else None,
        score_before=before.score if before else None,
        score_after=entry.score if listed and entry else None,
        confidence=confidence, message=f"{ctx.board}: {message}",
        dedupe_key=dedupe_key(kind, ctx.board, subject, value, ctx.at_text), value=value,
    )


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule on one update: its events, the state to carry on, and what it saw."""

    events: tuple[Event, ...]
    state: RuleState
    trace: Trace


_CHANGED, _FIRED, _TIED, _NOT_REPORTED, _COOLDOWN, _SILENT = (
    Outcome.CHANGED, Outcome.FIRED, Outcome.TIED, Outcome.NOT_REPORTED, Outcome.COOLDOWN, Outcome.SILENT)


def evaluate_rule(rule: Rule, ctx: Context, state: RuleState | None) -> RuleResult:
    """One rule on one update (`ctx`), from its state before it (None: the rule has none yet).

    The one place a rule is judged: `evaluate` runs it for every rule, `explain` for one.
    """
    kind, bound = rule.spec, rule.bound
    fresh = state is None and kind.condition and not ctx.baseline and ctx.prev is not None
    if fresh:
        # A rule with no state yet (just subscribed, or history imported without the rules)
        # takes the previous snapshot as its baseline, so this update is judged like any other.
        state = evaluate_rule(rule, ctx.previous(), None).state
    state = rekey(state or RuleState(), ctx.renames)
    machine = _Machine(rule.params.confirm, rule.params.cooldown, state, ctx.now)
    observed = bound.observe(ctx, Memory(machine.confirmed.view, machine.streak.view.keys()))
    seen: list[Judged] = []
    record = seen.append
    if ctx.baseline and kind.condition:
        if kind.baseline_forgets:
            machine.reset()
        for subject, obs in observed.items():
            machine.baseline(subject, obs.value, kind.default)
            record((subject, obs, None, Outcome.BASELINE, 0, None))
        return RuleResult((), machine.state(state), Trace(tuple(seen), fresh))
    meaning = bound.meaning()
    events: list[Event] = []
    # Names looked up once: this loop runs for every subject of every rule (bench/bench_rules.py).
    condition, default = kind.condition, kind.default
    step, cooling_since = machine.step, machine.cooling_since
    reportable, message_of = bound.reportable, bound.message
    # `confidence=clear`: a tied observation neither fires nor moves the state, so the change is
    # reported once the intervals separate; a baseline records it whatever the confidence.
    clear_only = bound.clear_only()
    for subject, obs in observed.items():
        before: str | None = None
        if condition:
            if clear_only and obs.confidence == "tied":
                record((subject, obs, machine.confirmed.view.get(subject, default), _TIED, 0, None))
                continue
            before, outcome, count = step(subject, obs.value, default)
            if outcome is not _CHANGED:
                record((subject, obs, before, outcome, count, None))
                continue
            if before is None or not reportable(before, obs, ctx):
                record((subject, obs, before, _NOT_REPORTED, 0, None))
                continue
        since = cooling_since(subject, obs.value)
        if since is not None:
            record((subject, obs, before, _COOLDOWN, 0, since))
            continue
        message = message_of(ctx, obs, before)
        if not message:
            record((subject, obs, before, _SILENT, 0, None))
            continue
        record((subject, obs, before, _FIRED, 0, None))
        groups = obs.groups or (ctx.groups_of(obs.entry) if obs.entry else ())
        events.append(_event(rule, ctx, subject, obs.value + meaning, message, entry=obs.entry,
                             other=obs.other, groups=groups, confidence=obs.confidence))
    return RuleResult(tuple(events), machine.state(state), Trace(tuple(seen), fresh))


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The events of one snapshot and the states to carry to the next one."""

    events: tuple[Event, ...]
    rule_states: Mapping[str, RuleState]
    board_state: BoardState
    changed: str | None


def evaluate(prev: Snapshot | None, curr: Snapshot, rules: Sequence[Rule],
             states: Mapping[str, RuleState], board_state: BoardState, groups: Mapping[str, Group],
             now: datetime, elsewhere: Mapping[str, tuple[Pairing, ...]] | None = None) -> Evaluation:
    """All events the rules find going from `prev` to `curr` on one board.

    `states` maps rule names to their state on this board; `now` is the evaluation time (the
    snapshot's as-of time in a replay). The first snapshot and a change of method set baselines.
    Every rule gets a state back, an empty one for the kinds that remember nothing, so a stored
    state also says which rules ran at a snapshot.
    """
    ctx = Context(prev, curr, groups, board_state, now, elsewhere or {})
    events: list[Event] = []
    new_states: dict[str, RuleState] = {}
    for rule in rules:
        result = evaluate_rule(rule, ctx, states.get(rule.name))
        events.extend(result.events)
        new_states[rule.name] = result.state
    return Evaluation(tuple(events), new_states, ctx.board_state_after(), ctx.changed)
