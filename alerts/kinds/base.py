"""What a rule kind is (`Kind`), its typed parameters (`Params`, `param`), and the trace the engine keeps.

A kind is one class: its name, alert title and help line; a frozen dataclass of typed parameters
whose fields carry their default and help (`param`; how a value parses follows from the field's type,
`Literal[...]` being a choice); what it observes on an update, which changes it reports and how they
read; and the line `why` shows, written from the engine's trace. Parameters are parsed and checked
when a rule loads (`Kind.make`), so a rule that runs is valid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from types import UnionType
from typing import ClassVar, Generic, Literal, NamedTuple, TypeVar, get_args, get_origin, get_type_hints

from leaderwatch.alerts.context import Context
from leaderwatch.alerts.durations import DurationError, format_duration, parse_duration
from leaderwatch.alerts.models import Rule, RuleError
from leaderwatch.alerts.texts import moment
from leaderwatch.sources.base import Entry

T = TypeVar("T")

# --- parsing parameter values ---------------------------------------------------------------------


def whole(low: int) -> Callable[[str], int]:
    """A parser of whole numbers of at least `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise RuleError(f"`{text}` is not a whole number") from None
        if value < low:
            raise RuleError(f"{value} is too small (at least {low})")
        return value
    return parse


def number(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise RuleError(f"`{text}` is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RuleError(f"`{text}` is not a number")
    return value


def choice(*choices: str) -> Callable[[str], str]:
    """A parser that takes one of `choices` (any case)."""
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise RuleError(f"`{text}` is not one of {', '.join(choices)}")
        return value
    return parse


def group_pair(text: str) -> tuple[str, str]:
    """Two different group names, `china,west`."""
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if len(names) != 2 or names[0] == names[1]:
        raise RuleError(f"`{text}` must name two different groups, e.g. china,west")
    return (names[0], names[1])


def nonempty(text: str) -> str:
    """A non-empty name, as written."""
    value = text.strip()
    if not value:
        raise RuleError("an empty value")
    return value


def group_name(text: str) -> str:
    """A group name; group names are case-insensitive, as in `groups=China,West`."""
    return nonempty(text).lower()


def optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """`parse`, or None for `any`, `none`, `0` or nothing: the filter is off."""
    def wrapped(text: str) -> T | None:
        return None if text.strip().lower() in ("", "any", "none", "0") else parse(text)
    return wrapped


def cooldown(text: str) -> timedelta:
    """A rule's cooldown in the one duration grammar (`90s`, `30m`, `1.5h`, `2d`, `2w`), or `0` for none."""
    try:
        return parse_duration(text, zero=True)
    except DurationError as exc:
        raise RuleError(str(exc)) from None


def group_names(value: object) -> tuple[str, ...]:
    """The group names a parameter's value holds: a pair, one name, or none (the filter is off)."""
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return (value,) if isinstance(value, str) else ()


def show(value: object) -> str:
    """A parsed value written back the way a rule's name spells it (`china,west`, `7d`, `2.5`)."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- declaring parameters -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Spec:
    help: str
    named: bool
    groups: bool
    minimum: int


_SPEC = "leaderwatch.param"


def param(default: T, *, help: str, named: bool = False, groups: bool = False, minimum: int = 1,
          common: bool = False) -> T:
    """A parameter field: its default and help; how its values parse follows from its type (`parser_of`).

    `named`: always shown in the rule's name; `groups`: its values name groups, checked against the
    configured ones when a rule loads; `minimum`: of a whole number; `common`: a field of a shared
    base class, keyword-only so that each kind's own fields come first.
    """
    return field(default=default, kw_only=common, metadata={_SPEC: _Spec(help, named, groups, minimum)})


def required(kind: type[T], *, help: str) -> T:
    """A parameter field of type `kind` without a default: a rule must give it, and its name shows it."""
    value: T = field(metadata={_SPEC: _Spec(help, True, False, 1)})
    return value


def parser_of(hint: object, spec: _Spec) -> Callable[[str], object]:
    """How values of a parameter of this type parse: `Literal[...]` is a choice, `X | None` an optional X."""
    args = get_args(hint)
    if isinstance(hint, UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return optional(parser_of(inner, spec))
    if get_origin(hint) is Literal:
        return choice(*(str(a) for a in args))
    parsers: dict[object, Callable[[str], object]] = {
        int: whole(spec.minimum), float: number, timedelta: cooldown, tuple[str, str]: group_pair,
        str: group_name if spec.groups else nonempty}
    if hint not in parsers:
        raise TypeError(f"no parser for a parameter of type {hint}")
    return parsers[hint]


COMMON = ("confirm", "cooldown")
"""The parameters several kinds share, through `ConditionParams` and `CooldownParams`."""


@dataclass(frozen=True, slots=True)
class Params:
    """The base of every kind's parameters: a frozen dataclass of `param` fields.

    A kind that takes no `confirm` reports on one snapshot, and one that takes no `cooldown` never
    holds an outcome back: these properties stand in for the fields it does not declare.
    """

    @property
    def confirm(self) -> int:
        """Consecutive snapshots a change must show in."""
        return 1

    @property
    def cooldown(self) -> timedelta:
        """How long the same subject and outcome stays quiet after firing."""
        return timedelta(0)


@dataclass(frozen=True, slots=True)
class CooldownParams(Params):
    """The parameters of a kind that may report the same outcome again: they take a `cooldown`."""

    cooldown: timedelta = param(timedelta(days=7), common=True,
                                help="after firing, the same subject and outcome stays quiet this long")


@dataclass(frozen=True, slots=True)
class ConditionParams(CooldownParams):
    """The parameters of a condition, which may flicker: they take `confirm` as well."""

    confirm: int = param(1, common=True, help="the condition must hold in this many consecutive snapshots")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter as users see it: name, parser, default, how a value reads, and help."""

    name: str
    parse: Callable[[str], object]
    default: object
    show: Callable[[object], str]
    always_named: bool
    help: str
    names_groups: bool = False


def parameters(params: type[Params]) -> tuple[Param, ...]:
    """The parameters a parameters dataclass declares: its own first, then the common ones, in the
    order a rule's name shows them."""
    hints = get_type_hints(params)
    found: dict[str, Param] = {}
    for f in fields(params):
        spec = f.metadata.get(_SPEC)
        if not isinstance(spec, _Spec):
            raise TypeError(f"{params.__name__}.{f.name} is not declared with param()")
        default = None if f.default is MISSING else f.default
        found[f.name] = Param(f.name, parser_of(hints[f.name], spec), default, show, spec.named, spec.help,
                              spec.groups)
    own = [p for name, p in found.items() if name not in COMMON]
    return (*own, *(found[name] for name in COMMON if name in found))


# --- what the engine hands a kind, and what it records ------------------------------------------

class Observation(NamedTuple):
    """A condition's value for one subject, with what an event would need to say."""

    value: str
    entry: Entry | None = None
    other: Entry | None = None
    confidence: str = "n/a"
    groups: tuple[str, ...] = ()

    @property
    def model(self) -> Entry:
        """The model observed, for the kinds whose observations always name one."""
        if self.entry is None:
            raise ValueError(f"the observation `{self.value}` names no model")
        return self.entry

    @property
    def rival(self) -> Entry:
        """The model it was compared with (overtake, gap), for the kinds that always name one."""
        if self.other is None:
            raise ValueError(f"the observation `{self.value}` names no second model")
        return self.other


Observed = Mapping[str, Observation]
"""What a kind observed on an update, by subject (`china|west`, a model key, `leader`, `method`)."""


class Memory(NamedTuple):
    """What a rule remembers of a board as it observes: confirmed values and subjects mid-confirmation."""

    confirmed: Mapping[str, str]
    pending: Collection[str]


class Outcome(StrEnum):
    """What the engine made of one observed subject."""

    FIRED = "fired"
    CHANGED = "changed"  # confirmed; the reportable and cooldown checks decide (never left in a trace)
    UNCHANGED = "unchanged"
    FIRST = "first"  # no value known before and no default: recorded as the baseline
    BASELINE = "baseline"  # the update only sets the baseline
    WAITING = "waiting"  # a change not yet seen in `confirm` snapshots in a row
    COOLDOWN = "cooldown"  # the same outcome fired less than `cooldown` ago
    NOT_REPORTED = "not reported"  # a change the rule does not report (direction, group)
    TIED = "tied"  # statistically tied, and the rule waits for the intervals to separate
    SILENT = "silent"  # nothing to say (a subject without the entries a message needs)


class Seen(NamedTuple):
    """One subject as the engine judged it: observed now, confirmed before, and the outcome."""

    subject: str
    observation: Observation
    before: str | None
    outcome: Outcome
    in_a_row: int = 0  # WAITING: snapshots in a row that showed the new value so far
    since: datetime | None = None  # COOLDOWN: when the same outcome last fired


Judged = tuple[str, Observation, str | None, Outcome, int, datetime | None]
"""A `Seen` as the engine records it: a plain tuple, which builds fastest (every subject of every rule)."""


@dataclass(frozen=True, slots=True)
class Trace:
    """Everything one rule saw on one update, subject by subject, in the engine's order.

    `fresh`: the rule had no state, so it took the previous snapshot as its baseline.
    """

    judged: tuple[Judged, ...]
    fresh: bool = False

    @property
    def seen(self) -> tuple[Seen, ...]:
        """Each subject as the engine judged it."""
        return tuple(Seen._make(j) for j in self.judged)

    @property
    def fired(self) -> bool:
        """True when the rule fired on at least one subject."""
        return any(j[3] is Outcome.FIRED for j in self.judged)

    def having(self, *outcomes: Outcome) -> list[Seen]:
        """The subjects that ended with one of `outcomes`."""
        return [s for s in self.seen if s.outcome in outcomes]


# --- wording shared by the kinds' explanations ----------------------------------------------------

def listing(items: Sequence[str], limit: int = 3) -> str:
    """`a, b, c and 2 more`."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def baseline_reason(ctx: Context) -> str:
    """Why an update only set the baseline."""
    if ctx.changed is not None:
        return (f"the board changed ({ctx.changed}): this snapshot set a new baseline and per-model "
                "alerts paused")
    if ctx.prev is None:
        return "the board's first snapshot: it only sets the baseline"
    return "the rules' first look at this board: it only sets the baseline"


def held(seen: Seen, params: Params) -> str:
    """What kept a change the rule reports from firing: confirmation, cooldown, a tie; or a first sight."""
    if seen.outcome is Outcome.WAITING:
        return (f"waiting for confirmation: seen in {seen.in_a_row} of {params.confirm} snapshots in a row "
                f"(confirm={params.confirm})")
    if seen.outcome is Outcome.COOLDOWN and seen.since is not None:
        return (f"inside the cooldown since {moment(seen.since)}, when the same outcome fired "
                f"(cooldown={format_duration(params.cooldown)})")
    if seen.outcome is Outcome.TIED:
        return "statistically tied: with confidence=clear the rule waits for the intervals to separate"
    if seen.outcome is Outcome.FIRST:
        return "the rule's first sight of it: recorded as the baseline"
    return str(seen.outcome)


# --- the kind -------------------------------------------------------------------------------------

P = TypeVar("P", bound=Params)


class AnyKind(ABC):
    """A kind as the registry and a rule hold it, whatever the type of its parameters."""

    name: ClassVar[str]
    title: ClassVar[str]
    """The alert's title (`Overtake on lmarena/text`)."""
    help: ClassVar[str]
    """One line: what the kind reports (`help RULE`, `subscribe`)."""
    default: ClassVar[str | None] = None
    """The value of a subject never confirmed (`out` for top_n): no event for a subject first seen there."""
    condition: ClassVar[bool] = True
    """A condition observed per subject, confirmed and compared with what it was; False for an
    occurrence reported as seen (a new model, a move, a change of method)."""
    baseline_forgets: ClassVar[bool] = False
    """A baseline forgets every confirmed value (the subjects are models, not a fixed pair)."""
    spans_boards: ClassVar[bool] = False
    """The rule compares boards with each other (`rival`): its state is one for all the boards it spans,
    and the engine is handed the other boards' tables (`Context.elsewhere`)."""
    example: ClassVar[str] = ""
    """A rule of the kind as a user subscribes it (`share group=china count=3 top=10`); "" for the name."""

    @abstractmethod
    def parameters(self) -> tuple[Param, ...]:
        """Every parameter the kind takes, its own first, then the common ones that apply to it."""

    @property
    def common(self) -> tuple[str, ...]:
        """The common parameters (`confirm`, `cooldown`) that mean something to this kind."""
        return tuple(p.name for p in self.parameters() if p.name in COMMON)

    @abstractmethod
    def make(self, raw: Mapping[str, object], known_groups: Collection[str] | None = None) -> Rule:
        """A rule of this kind from raw values (strings, numbers or lists); RuleError names what is wrong."""


class Kind(AnyKind, Generic[P]):
    """One kind of rule, e.g. `overtake`, everything about it in one class; registered in `kinds`.

    A subclass names itself in its class statement (`class Gap(Kind[GapParams], name="gap",
    title="Gap", help="...")`) and implements the methods below with its own parameters' type;
    the registry makes it with that parameters class (`Gap(GapParams)`).
    """

    def __init_subclass__(cls, *, name: str, title: str, help: str, default: str | None = None,
                          condition: bool = True, baseline_forgets: bool = False, spans_boards: bool = False,
                          example: str = "") -> None:
        super().__init_subclass__()
        cls.name, cls.title, cls.help, cls.default = name, title, help, default
        cls.condition, cls.baseline_forgets = condition, baseline_forgets
        cls.spans_boards, cls.example = spans_boards, example or name

    def __init__(self, params: type[P]) -> None:
        self.params = params
        self._parameters = parameters(params)

    def parameters(self) -> tuple[Param, ...]:
        """Every parameter the kind takes, its own first, then the common ones that apply to it."""
        return self._parameters

    def make(self, raw: Mapping[str, object], known_groups: Collection[str] | None = None) -> Rule:
        """A rule of this kind from raw values (strings, numbers or lists); RuleError names what is wrong."""
        specs = {p.name: p for p in self.parameters()}
        values: dict[str, object] = {p.name: p.default for p in specs.values()}
        for key, raw_value in raw.items():
            if key not in specs:
                allowed = ", ".join(specs) or "none"
                raise RuleError(f"rule `{self.name}` has no parameter `{key}` (parameters: {allowed})")
            text = ",".join(map(str, raw_value)) if isinstance(raw_value, list | tuple) else str(raw_value)
            try:
                values[key] = specs[key].parse(text)
            except RuleError as exc:
                raise RuleError(f"rule `{self.name}` {key}={text}: {exc}") from None
        missing = [k for k, v in values.items() if v is None and specs[k].always_named]
        if missing:
            raise RuleError(f"rule `{self.name}` needs {missing[0]}=VALUE")
        if known_groups is not None:
            for p in specs.values():
                unknown = [g for g in group_names(values[p.name]) if g not in known_groups]
                if p.names_groups and unknown:
                    raise RuleError(f"rule `{self.name}` {p.name}: unknown group `{unknown[0]}` "
                                    f"(groups: {', '.join(sorted(known_groups))})")
        shown = [f"{p.name}={p.show(values[p.name])}" for p in specs.values()
                 if p.always_named or values[p.name] != p.default]
        params = self.params(**values)
        return Rule(self, params, " ".join([self.name, *shown]), Bound(self, params))

    @abstractmethod
    def observe(self, p: P, ctx: Context, memory: Memory) -> Observed:
        """The value of each subject the update may have changed."""

    def clear_only(self, p: P) -> bool:
        """True when the rule reports a change only once the two models' confidence intervals separate."""
        return False

    def reportable(self, p: P, before: str, obs: Observation, ctx: Context) -> bool:
        """Whether a confirmed change from `before` to `obs.value` is one the rule reports."""
        return True

    @abstractmethod
    def message(self, p: P, ctx: Context, obs: Observation, before: str | None) -> str | None:
        """The alert's text for a change it reports (without the board's name)."""

    def meaning(self, p: P) -> str:
        """The parameters that change what an outcome means, as part of its dedupe key (`|top=10`)."""
        return ""

    def explain(self, p: P, ctx: Context, trace: Trace) -> str:
        """One line for `why`: what the rule saw on the update and what it made of it."""
        if ctx.baseline and not trace.fired:
            return baseline_reason(ctx)
        return self.reason(p, ctx, trace)

    @abstractmethod
    def reason(self, p: P, ctx: Context, trace: Trace) -> str:
        """`explain` on an update that is no baseline, written from the engine's trace."""


class Bound:
    """A kind applied to one rule's parameters, so the engine calls it without knowing their type.

    Each method is the kind's with the parameters filled in (`functools.partial`, which calls
    straight through: the engine calls these once per subject, for a thousand rules).
    """

    __slots__ = ("observe", "clear_only", "reportable", "message", "meaning", "explain")

    def __init__(self, kind: Kind[P], p: P) -> None:
        self.observe: Callable[[Context, Memory], Observed] = partial(kind.observe, p)
        self.clear_only: Callable[[], bool] = partial(kind.clear_only, p)
        self.reportable: Callable[[str, Observation, Context], bool] = partial(kind.reportable, p)
        self.message: Callable[[Context, Observation, str | None], str | None] = partial(kind.message, p)
        self.meaning: Callable[[], str] = partial(kind.meaning, p)
        self.explain: Callable[[Context, Trace], str] = partial(kind.explain, p)


def tie_note(confidence: str) -> str:
    """What an alert adds when the two models' confidence intervals overlap."""
    return " (statistically tied: the confidence intervals overlap)" if confidence == "tied" else ""


def missing_best(ctx: Context, a: str, b: str) -> str:
    """Why two groups' best models cannot be compared: a group is absent, or the two are tied."""
    best_a, best_b = ctx.best(a), ctx.best(b)
    if best_a is None or best_b is None:
        return f"no {a if best_a is None else b} model on the board"
    return f"best {a} {best_a.name} and best {b} {best_b.name} are tied at #{best_a.rank}"


def one_subject(seen: Seen, params: Params, text: str, after: str, not_reported: str = "") -> str:
    """The line of a kind with one subject: what it sees now (`text`), then what became of it;
    `after` says what it was before a change, `not_reported` why such a change is not reported."""
    if seen.outcome is Outcome.UNCHANGED:
        return f"{text}, as before"
    if seen.outcome is Outcome.FIRED:
        return f"{text}{after}"
    if seen.outcome is Outcome.NOT_REPORTED:
        return f"{text}{after}{not_reported}"
    if seen.outcome is Outcome.COOLDOWN:
        return f"{text}{after}; {held(seen, params)}"
    return f"{text}; {held(seen, params)}"


def held_clauses(trace: Trace, params: Params, say: Callable[[Seen], str],
                 not_reported: str = "") -> list[str]:
    """One clause per way subjects were held back (`say` names a subject's change), for kinds of many
    subjects: `waiting for confirmation (confirm=2): X entering (1 of 2)`."""
    clauses = []
    waiting = trace.having(Outcome.WAITING)
    if waiting:
        clauses.append(f"waiting for confirmation (confirm={params.confirm}): "
                       + listing([f"{say(s)} ({s.in_a_row} of {params.confirm})" for s in waiting]))
    cooling = trace.having(Outcome.COOLDOWN)
    if cooling:
        clauses.append(f"inside the cooldown (cooldown={format_duration(params.cooldown)}): " + listing(
            [f"{say(s)} (last fired {moment(s.since)})" if s.since else say(s) for s in cooling]))
    quiet = trace.having(Outcome.NOT_REPORTED)
    if quiet:
        clauses.append(f"not reported ({not_reported}): " + listing([say(s) for s in quiet]))
    first = trace.having(Outcome.FIRST)
    if first:
        clauses.append("first seen, recorded as the baseline: " + listing([say(s) for s in first]))
    return clauses
