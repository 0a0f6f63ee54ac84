"""The rules engine, case by case: every event kind, the noise it must not report, and the Event itself.

Each case is a short history of one board (small hand-built tables, group membership explicit)
driven through `evaluate` one snapshot at a time, with the rule and board states threaded through
and the evaluation time passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leaderwatch.alerts.context import base_key, find_renames, method_change
from leaderwatch.alerts.models import CONFIDENCES, KINDS, BoardState, Event, RuleState
from leaderwatch.alerts.rules import Evaluation, evaluate
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.sources.base import Board, Entry, Snapshot, competition_ranks, make_snapshot
from leaderwatch.sources.identity import Identity, canonical_key, default_groups

GROUPS = default_groups()
T0 = datetime(2025, 3, 3, tzinfo=UTC)
BOARD = Board("test/board", "Test board", "score")
ARENA = Board("test/arena", "Arena", "rating", has_ci=True)
COST = Board("test/cost", "Cost to solve", "dollars", higher_is_better=False)


# --- building tables ------------------------------------------------------------------------------

def model(name: str, score: float, org: str, country: str, *, open_weights: bool | None = None,
          ci: tuple[float, float] | None = None, rank: int = 0) -> Entry:
    """An entry with its organization, country and licence spelled out (rank 0: from the score)."""
    return Entry(name=name, model_key=canonical_key(name), score=score, rank=rank, organization=org,
                 countries=(country,), open_weights=open_weights,
                 ci_lower=ci[0] if ci else None, ci_upper=ci[1] if ci else None)


def cn(name: str, score: float, **kw: Any) -> Entry:
    """A Chinese open-weights model (china, open-weights)."""
    return model(name, score, "DeepSeek", "CN", open_weights=True, **kw)


def qwen(name: str, score: float, **kw: Any) -> Entry:
    """A Chinese model of another organization (china)."""
    return model(name, score, "Alibaba", "CN", open_weights=True, **kw)


def us(name: str, score: float, **kw: Any) -> Entry:
    """A US proprietary model (us, west, proprietary)."""
    return model(name, score, "OpenAI", "US", open_weights=False, **kw)


def fr(name: str, score: float, **kw: Any) -> Entry:
    """A French open-weights model (europe, west, open-weights)."""
    return model(name, score, "Mistral AI", "FR", open_weights=True, **kw)


def mixed(name: str, score: float, **kw: Any) -> Entry:
    """An entry built from a Chinese and a US model: credited to no country."""
    return replace(model(name, score, "mixed", "CN", **kw), countries=("CN", "US"), mixed=True)


def snap(day: float, rows: Sequence[Entry], board: Board = BOARD, **kw: Any) -> Snapshot:
    """A snapshot as of T0 + day; rows without a rank get competition ranks from their scores."""
    ranks = competition_ranks([e.score for e in rows], board.higher_is_better)
    ranked = [e if e.rank else replace(e, rank=r) for e, r in zip(rows, ranks, strict=True)]
    at = T0 + timedelta(days=day)
    return make_snapshot(board, at, at, ranked, **kw)


Step = tuple[float, Sequence[Entry]]


def history(steps: Sequence[Step | Snapshot], board: Board = BOARD) -> list[Snapshot]:
    return [s if isinstance(s, Snapshot) else snap(s[0], s[1], board) for s in steps]


@dataclass
class Run:
    """Snapshots driven through `evaluate` in order, the states threaded from one call to the next."""

    evaluations: list[Evaluation]

    @property
    def events(self) -> list[tuple[int, Event]]:
        return [(i, e) for i, ev in enumerate(self.evaluations) for e in ev.events]


def run(rules: str | Sequence[str], snaps: Sequence[Snapshot],
        now: Sequence[datetime] | None = None) -> Run:
    """Evaluate the snapshots in order; `now` defaults to each snapshot's as-of time."""
    texts = [rules] if isinstance(rules, str) else list(rules)
    parsed = [parse_rule(t, GROUPS) for t in texts]
    prev: Snapshot | None = None
    states: dict[str, RuleState] | Any = {}
    board_state = BoardState()
    out = []
    for i, s in enumerate(snaps):
        when = now[i] if now is not None else s.as_of
        result = evaluate(prev, s, parsed, states, board_state, GROUPS, when)
        prev, states, board_state = s, result.rule_states, result.board_state
        out.append(result)
    return Run(out)


def verb(e: Event) -> str:
    """The outcome an event reports, read from its message: in/out, above/below, up/down.

    For `score`, "above" is the side past the threshold (lower scores on a lower-is-better board).
    """
    words = {
        "top_n": ((" entered the top ", "in"), (" left the top ", "out")),
        "gap": (("fell below", "below"), ("rose above", "above")),
        "score": (("rose to or above", "above"), ("fell to or below", "above"), ("fell below", "below"),
                  ("rose above", "below")),
        "rank_change": ((" passed ", "up"), (" fell behind ", "down")),
    }[e.kind]
    for word, value in words:
        if word in e.message:
            return value
    raise AssertionError(f"no outcome in {e.message!r}")


@dataclass(frozen=True)
class Case:
    id: str
    rules: str | Sequence[str]
    steps: Sequence[Step | Snapshot]
    expected: list[tuple[Any, ...]]
    board: Board = BOARD


def cases(*items: Case) -> Any:
    return pytest.mark.parametrize("case", items, ids=[c.id for c in items])


def project(case: Case, shape: Callable[[int, Event], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [shape(i, e) for i, e in run(case.rules, history(case.steps, case.board)).events]


# Names used across the tables.
GPT, GPT2, O3 = "GPT-5", "GPT-4.1", "o3"
DS, DS2, QW = "DeepSeek-V3", "DeepSeek-R1", "Qwen3-Max"
MI = "Mistral Large 2"
CW = ("china", "west")


# --- overtake -------------------------------------------------------------------------------------

@cases(
    Case("china passes west", "overtake groups=china,west",
         [(0, [us(GPT, 80), cn(DS, 70), fr(MI, 60)]),
          (1, [cn(DS, 82), us(GPT, 80), fr(MI, 60)])],
         [(1, DS, GPT, CW, "n/a", 2, 1)]),
    Case("west passes back", "overtake groups=china,west",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [cn(DS, 82), us(GPT, 80)]),
          (2, [us(GPT, 85), cn(DS, 82)])],
         [(1, DS, GPT, CW, "n/a", 2, 1), (2, GPT, DS, CW, "n/a", 2, 1)]),
    Case("the pair written the other way round", "overtake groups=west,china",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [cn(DS, 82), us(GPT, 80)])],
         [(1, DS, GPT, ("west", "china"), "n/a", 2, 1)]),
    Case("best of each group, wherever it ranks", "overtake groups=china,west",
         [(0, [us(GPT, 90), us(O3, 80), cn(DS, 70), qwen(QW, 60)]),
          (1, [us(GPT, 90), us(O3, 80), cn(DS, 70), qwen(QW, 95)])],
         [(1, QW, GPT, CW, "n/a", 4, 1)]),
    Case("open weights pass proprietary", "overtake groups=open-weights,proprietary",
         [(0, [us(GPT, 80), fr(MI, 70)]),
          (1, [fr(MI, 85), us(GPT, 80)])],
         [(1, MI, GPT, ("open-weights", "proprietary"), "n/a", 2, 1)]),
    Case("europe passes us and us passes back", "overtake groups=europe,us",
         [(0, [cn(DS, 99), us(GPT, 80), fr(MI, 70)]),
          (1, [cn(DS, 99), fr(MI, 85), us(GPT, 80)]),
          (2, [cn(DS, 99), us(GPT, 90), fr(MI, 85)])],
         [(1, MI, GPT, ("europe", "us"), "n/a", 3, 2), (2, GPT, MI, ("europe", "us"), "n/a", 3, 2)]),
    Case("order unchanged while scores move", "overtake groups=china,west",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [us(GPT, 81), cn(DS, 79)]),
          (2, [us(GPT, 84), cn(DS, 60)])],
         []),
    Case("a third group's model in between changes nothing", "overtake groups=europe,us",
         [(0, [us(GPT, 80), fr(MI, 70)]),
          (1, [cn(DS, 90), us(GPT, 80), fr(MI, 70)])],
         []),
    Case("a published tie is no overtake; the pass after it is", "overtake groups=china,west",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [us(GPT, 80), cn(DS, 80)]),
          (2, [cn(DS, 81), us(GPT, 80)])],
         [(2, DS, GPT, CW, "n/a", 1, 1)]),
    Case("a tie resolved back to the old order is nothing", "overtake groups=china,west",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [us(GPT, 80), cn(DS, 80)]),
          (2, [us(GPT, 81), cn(DS, 80)])],
         []),
    Case("lower is better: ranks decide", "overtake groups=china,west",
         [(0, [us(GPT, 1.5), cn(DS, 2.0)]),
          (1, [cn(DS, 1.0), us(GPT, 1.5)])],
         [(1, DS, GPT, CW, "n/a", 2, 1)], board=COST),
)
def test_overtake(case: Case) -> None:
    got = project(case, lambda i, e: (i, e.model, e.other, e.groups, e.confidence,
                                      e.rank_before, e.rank_after))
    assert got == case.expected
    assert all(e.kind == "overtake" for _, e in run(case.rules, history(case.steps, case.board)).events)


# --- new_leader -----------------------------------------------------------------------------------

@cases(
    Case("a new #1 takes it from the old", "new_leader",
         [(0, [us(GPT, 80), cn(DS, 70), fr(MI, 60)]),
          (1, [cn(DS, 82), us(GPT, 80), fr(MI, 60)])],
         [(1, DS, GPT, "n/a")]),
    Case("#1 unchanged while the rest moves", "new_leader",
         [(0, [us(GPT, 80), cn(DS, 70), fr(MI, 60)]),
          (1, [us(GPT, 80), fr(MI, 75), cn(DS, 70)])],
         []),
    Case("a published tie for #1 is a shared lead", "new_leader",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [us(GPT, 80), cn(DS, 80)]),   # DS shares #1
          (2, [cn(DS, 81), us(GPT, 80)]),   # the co-leader DS led already: nothing new
          (3, [us(GPT, 82), cn(DS, 81)])],  # GPT alone again: a new #1
         [(1, DS, GPT, "tied"), (3, GPT, DS, "n/a")]),
    Case("a leader removed from a full table", "new_leader",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [cn(DS, 70)])],
         [(1, DS, GPT, "n/a")]),
    Case("group filter: only a new #1 of the group", "new_leader group=china",
         [(0, [us(GPT, 80), us(O3, 70), cn(DS, 60)]),
          (1, [us(O3, 85), us(GPT, 80), cn(DS, 60)]),
          (2, [cn(DS, 90), us(O3, 85), us(GPT, 80)])],
         [(2, DS, O3, "n/a")]),
)
def test_new_leader(case: Case) -> None:
    assert project(case, lambda i, e: (i, e.model, e.other, e.confidence)) == case.expected


# --- top_n ----------------------------------------------------------------------------------------

def six(**scores: float) -> list[Entry]:
    """Six US models a..f scoring 90..40, with some scores changed."""
    base = {"a": 90.0, "b": 80.0, "c": 70.0, "d": 60.0, "e": 50.0, "f": 40.0}
    base.update(scores)
    return [us(k, v) for k, v in base.items()]


@cases(
    Case("enter at rank N", "top_n top=3 margin=1",
         [(0, six()), (1, six(d=75))],
         [(1, "d", "in", 4, 3)]),
    Case("leave only past N + margin", "top_n top=3 margin=1",
         [(0, six()),
          (1, six(d=75)),          # c falls to #4 = N + margin: still in
          (2, six(d=75, c=45))],   # c falls to #5: out
         [(1, "d", "in", 4, 3), (2, "c", "out", 4, 5)]),
    Case("at N + margin without having been in is not in", "top_n top=3 margin=1",
         [(0, six()), (1, six(e=65))],
         []),
    Case("margin 0: leaving at N + 1", "top_n top=3 margin=0",
         [(0, six()), (1, six(d=75))],
         [(1, "d", "in", 4, 3), (1, "c", "out", 3, 4)]),
    Case("a new model landing in the top N", "top_n top=3 margin=1",
         [(0, six()), (1, [*six(), us("x", 100)])],
         [(1, "x", "in", None, 1)]),
    Case("a model removed from a full table has left", "top_n top=3 margin=1",
         [(0, six()), (1, six()[1:])],
         [(1, "d", "in", 4, 3), (1, "a", "out", 1, None)]),
    Case("group filter", "top_n top=2 margin=0 group=china",
         [(0, [us("a", 90), us("b", 80), cn("c", 70), us("d", 60)]),
          (1, [us("a", 90), us("d", 85), cn("c", 70), us("b", 60)]),  # a US model enters: not reported
          (2, [us("a", 90), cn("c", 88), us("d", 85), us("b", 60)])],
         [(2, "c", "in", 3, 2)]),
    Case("direction=enter", "top_n top=3 margin=0 direction=enter",
         [(0, six()), (1, six(d=75))],
         [(1, "d", "in", 4, 3)]),
    Case("direction=leave", "top_n top=3 margin=0 direction=leave",
         [(0, six()), (1, six(d=75))],
         [(1, "c", "out", 3, 4)]),
)
def test_top_n(case: Case) -> None:
    got = project(case, lambda i, e: (i, e.model, verb(e), e.rank_before, e.rank_after))
    assert got == case.expected


# --- gap ------------------------------------------------------------------------------------------

GAP_STEPS: list[Step] = [
    (0, [us(GPT, 80), cn(DS, 70)]),   # gap 10
    (1, [us(GPT, 80), cn(DS, 77)]),   # gap 3: below 5
    (2, [us(GPT, 82), cn(DS, 72)]),   # gap 10: above 5
]


@cases(
    Case("points: falls below, rises above", "gap groups=china,west threshold=5", GAP_STEPS,
         [(1, DS, GPT, CW, "below"), (2, DS, GPT, CW, "above")]),
    Case("direction=below", "gap groups=china,west threshold=5 direction=below", GAP_STEPS,
         [(1, DS, GPT, CW, "below")]),
    Case("direction=above", "gap groups=china,west threshold=5 direction=above", GAP_STEPS,
         [(2, DS, GPT, CW, "above")]),
    Case("percent", "gap groups=china,west threshold=5 unit=percent",
         [(0, [us(GPT, 200), cn(DS, 180)]),   # 10 %
          (1, [us(GPT, 200), cn(DS, 192)]),   # 4 %
          (2, [us(GPT, 200), cn(DS, 189)])],  # 5.5 %
         [(1, DS, GPT, CW, "below"), (2, DS, GPT, CW, "above")]),
    Case("the lead changing hands with the gap still wide is no gap event",
         "gap groups=china,west threshold=5",
         [(0, [us(GPT, 80), cn(DS, 70)]),
          (1, [cn(DS, 90), us(GPT, 80)])],
         []),
    Case("the pair's order in the rule decides model and other", "gap groups=west,china threshold=5",
         GAP_STEPS[:2],
         [(1, GPT, DS, ("west", "china"), "below")]),
)
def test_gap(case: Case) -> None:
    assert project(case, lambda i, e: (i, e.model, e.other, e.groups, verb(e))) == case.expected


# --- score ----------------------------------------------------------------------------------------

@cases(
    Case("crossing up", "score threshold=80 cooldown=0",
         [(0, [us(GPT, 78), cn(DS, 70)]),
          (1, [us(GPT, 81), cn(DS, 70)]),
          (2, [us(GPT, 79), cn(DS, 70)]),
          (3, [us(GPT, 80), cn(DS, 70)])],  # reaching the threshold counts
         [(1, GPT, "above", 78, 81), (3, GPT, "above", 79, 80)]),
    Case("direction=below", "score threshold=80 direction=below",
         [(0, [us(GPT, 81)]), (1, [us(GPT, 79)]), (2, [us(GPT, 82)])],
         [(1, GPT, "below", 81, 79)]),
    Case("direction=both", "score threshold=80 direction=both",
         [(0, [us(GPT, 81)]), (1, [us(GPT, 79)]), (2, [us(GPT, 82)])],
         [(1, GPT, "below", 81, 79), (2, GPT, "above", 79, 82)]),
    Case("model filter", "score threshold=80 model=deepseek-v3",
         [(0, [us(GPT, 70), cn(DS, 70)]),
          (1, [us(GPT, 85), cn(DS, 75)]),
          (2, [us(GPT, 85), cn(DS, 86)])],
         [(2, DS, "above", 75, 86)]),
    Case("group filter", "score threshold=80 group=china",
         [(0, [us(GPT, 70), cn(DS, 70)]),
          (1, [us(GPT, 85), cn(DS, 81)])],
         [(1, DS, "above", 70, 81)]),
    Case("staying past the threshold is no new crossing", "score threshold=80",
         [(0, [us(GPT, 81)]), (1, [us(GPT, 85)]), (2, [us(GPT, 90)])],
         []),
    Case("lower is better: crossing means getting cheaper", "score threshold=1",
         [(0, [us(GPT, 1.2)]), (1, [us(GPT, 0.9)]), (2, [us(GPT, 1.1)])],
         [(1, GPT, "above", 1.2, 0.9)], board=COST),
)
def test_score(case: Case) -> None:
    got = project(case, lambda i, e: (i, e.model, verb(e), e.score_before, e.score_after))
    assert got == case.expected


# --- new_model ------------------------------------------------------------------------------------

NEW_BASE = [us(GPT, 90), us(O3, 80), fr(MI, 70), cn(DS, 60)]


@cases(
    Case("any new model", "new_model",
         [(0, NEW_BASE), (1, [*NEW_BASE, qwen(QW, 50)])],
         [(1, QW, 5)]),
    Case("top=3: only landing in the top 3", "new_model top=3",
         [(0, NEW_BASE),
          (1, [*NEW_BASE, qwen(QW, 50)]),
          (2, [*NEW_BASE, qwen(QW, 50), cn(DS2, 85)])],
         [(2, DS2, 2)]),
    Case("group filter", "new_model group=china",
         [(0, NEW_BASE),
          (1, [*NEW_BASE, us(GPT2, 50)]),
          (2, [*NEW_BASE, us(GPT2, 50), qwen(QW, 40)])],
         [(2, QW, 6)]),
    Case("organization filter, any case", "new_model organization=deepseek",
         [(0, NEW_BASE),
          (1, [*NEW_BASE, qwen(QW, 50)]),
          (2, [*NEW_BASE, qwen(QW, 50), cn(DS2, 40)])],
         [(2, DS2, 6)]),
    Case("a model seen before that comes back is not new", "new_model",
         [(0, NEW_BASE), (1, NEW_BASE[:3]), (2, NEW_BASE)],
         []),
    Case("two runs of one new model are one event, for the better run", "new_model",
         [(0, NEW_BASE),
          (1, [*NEW_BASE, qwen(f"{QW} (whole)", 75), qwen(f"{QW} (diff)", 55)])],
         [(1, f"{QW} (whole)", 3)]),
    Case("a new run of a known model is not new", "new_model",
         [(0, NEW_BASE), (1, [*NEW_BASE, us(f"{GPT} (high)", 95)])],
         []),
)
def test_new_model(case: Case) -> None:
    assert project(case, lambda i, e: (i, e.model, e.rank_after)) == case.expected


# --- rank_change ----------------------------------------------------------------------------------

def eight(**scores: float) -> list[Entry]:
    base = {k: float(90 - 10 * i) for i, k in enumerate("abcdefgh")}
    base.update(scores)
    return [us(k, v) for k, v in base.items()]


@cases(
    Case("up by at least K; the models it passed move one place each", "rank_change by=3",
         [(0, eight()), (1, eight(g=85))],
         [(1, "g", "up", 7, 2)]),
    Case("down by at least K", "rank_change by=3",
         [(0, eight()), (1, eight(b=15))],
         [(1, "b", "down", 2, 8)]),
    Case("a move of fewer than K places", "rank_change by=3",
         [(0, eight()), (1, eight(e=75))],
         []),
    Case("top filter: only moves into or within the top N", "rank_change by=3 top=3",
         [(0, eight()),
          (1, eight(h=55)),           # #8 -> #5
          (2, eight(h=55, g=85))],    # #7 -> #2
         [(2, "g", "up", 8, 2)]),
)
def test_rank_change(case: Case) -> None:
    got = project(case, lambda i, e: (i, e.model, verb(e), e.rank_before, e.rank_after))
    assert got == case.expected


# --- noise: uncertainty ---------------------------------------------------------------------------

def arena(day: float, ds: tuple[float, float, float], gpt: tuple[float, float, float]) -> Snapshot:
    """An arena table of two models, each (rating, CI lower, CI upper)."""
    return snap(day, [cn(DS, ds[0], ci=ds[1:]), us(GPT, gpt[0], ci=gpt[1:]), fr(MI, 1200, ci=(1190, 1210))],
                ARENA)


CI_HISTORY = [
    arena(0, (1290, 1285, 1295), (1300, 1295, 1305)),  # GPT leads
    arena(1, (1302, 1297, 1307), (1300, 1295, 1305)),  # DS leads, intervals overlap
    arena(2, (1312, 1308, 1316), (1300, 1295, 1305)),  # DS leads, intervals separate
]


@pytest.mark.parametrize(("rule", "expected"), [
    ("overtake groups=china,west", [(1, "overtake", DS, GPT, "tied")]),
    ("overtake groups=china,west confidence=clear", [(2, "overtake", DS, GPT, "clear")]),
    ("new_leader", [(1, "new_leader", DS, GPT, "tied")]),
    ("new_leader confidence=clear", [(2, "new_leader", DS, GPT, "clear")]),
], ids=["overtake-any", "overtake-clear", "new_leader-any", "new_leader-clear"])
def test_statistically_tied_pass_is_tied_and_clear_waits_for_separation(
        rule: str, expected: list[tuple[Any, ...]]) -> None:
    got = [(i, e.kind, e.model, e.other, e.confidence) for i, e in run(rule, CI_HISTORY).events]
    assert got == expected


def test_clear_pass_on_a_ci_board_is_clear_at_once() -> None:
    steps = [CI_HISTORY[0], arena(1, (1312, 1308, 1316), (1300, 1295, 1305))]
    got = [(i, e.kind, e.confidence) for i, e in run(["overtake groups=china,west confidence=clear",
                                                      "new_leader confidence=clear"], steps).events]
    assert got == [(1, "overtake", "clear"), (1, "new_leader", "clear")]


def test_tied_message_says_the_intervals_overlap() -> None:
    (_, event), = run("overtake groups=china,west", CI_HISTORY).events
    assert event.message.endswith("(statistically tied: the confidence intervals overlap)")


# --- noise: flip-flop and cooldown ----------------------------------------------------------------

def china_ahead(day: float) -> Snapshot:
    return snap(day, [cn(DS, 82), us(GPT, 80)])


def west_ahead(day: float) -> Snapshot:
    return snap(day, [us(GPT, 82), cn(DS, 80)])


@pytest.mark.parametrize(("rule", "flips", "now", "expected"), [
    # A passes B (fires), B passes back (fires: its first), A again inside the cooldown (silent),
    # B again inside its cooldown (silent), A after the cooldown (fires).
    ("overtake groups=china,west cooldown=7d", [west_ahead(0), china_ahead(1), west_ahead(2),
                                                 china_ahead(3), west_ahead(4), china_ahead(10)],
     None, [(1, DS), (2, GPT), (5, DS)]),
    ("overtake groups=china,west cooldown=0", [west_ahead(0), china_ahead(1), west_ahead(2), china_ahead(3)],
     None, [(1, DS), (2, GPT), (3, DS)]),
    # The cooldown is measured with the `now` passed in, not with the snapshots' dates.
    ("overtake groups=china,west cooldown=7d", [west_ahead(0), china_ahead(1), west_ahead(2), china_ahead(3)],
     [T0, T0 + timedelta(days=1), T0 + timedelta(days=2), T0 + timedelta(days=9)],
     [(1, DS), (2, GPT), (3, DS)]),
    ("new_leader cooldown=7d", [west_ahead(0), china_ahead(1), west_ahead(2), china_ahead(3),
                                west_ahead(4), china_ahead(10)],
     None, [(1, DS), (2, GPT), (5, DS)]),
], ids=["overtake-7d", "overtake-no-cooldown", "overtake-explicit-now", "new_leader-7d"])
def test_flip_flop_is_silenced_by_the_cooldown(rule: str, flips: list[Snapshot], now: list[datetime] | None,
                                              expected: list[tuple[int, str]]) -> None:
    assert [(i, e.model) for i, e in run(rule, flips, now).events] == expected


def test_cooldown_is_per_subject() -> None:
    """Two pairs on one board cool down separately."""
    steps = history([
        (0, [us(GPT, 90), fr(MI, 85), cn(DS, 80)]),
        (1, [cn(DS, 95), us(GPT, 90), fr(MI, 85)]),   # china passes west and europe
        (2, [us(GPT, 96), cn(DS, 95), fr(MI, 85)]),   # west passes back; europe still behind
    ])
    rules = ["overtake groups=china,west", "overtake groups=china,europe"]
    got = [(i, e.rule, e.model) for i, e in run(rules, steps).events]
    assert got == [(1, "overtake groups=china,west", DS), (1, "overtake groups=china,europe", DS),
                   (2, "overtake groups=china,west", GPT)]


# --- noise: confirmation --------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "flips", "expected"), [
    ("overtake groups=china,west confirm=2", [west_ahead(0), china_ahead(1), china_ahead(2)], [(2, DS)]),
    ("overtake groups=china,west confirm=2",
     [west_ahead(0), china_ahead(1), west_ahead(2), china_ahead(3), china_ahead(4)], [(4, DS)]),
    ("overtake groups=china,west confirm=3",
     [west_ahead(0), china_ahead(1), china_ahead(2), china_ahead(3)], [(3, DS)]),
    ("overtake groups=china,west confirm=3",
     [west_ahead(0), china_ahead(1), china_ahead(2), west_ahead(3)], []),
    ("new_leader confirm=2", [west_ahead(0), china_ahead(1), china_ahead(2)], [(2, DS)]),
], ids=["2-in-a-row", "a-blip-restarts-the-count", "3-in-a-row", "2-of-3-then-back", "new_leader"])
def test_confirm_needs_k_consecutive_snapshots(rule: str, flips: list[Snapshot],
                                               expected: list[tuple[int, str]]) -> None:
    assert [(i, e.model) for i, e in run(rule, flips).events] == expected


def test_confirmed_new_leader_names_the_leader_it_replaced() -> None:
    (_, event), = run("new_leader confirm=2", [west_ahead(0), china_ahead(1), china_ahead(2)]).events
    assert (event.model, event.other) == (DS, GPT)
    assert event.message.endswith(f"taking it from {GPT} (OpenAI, US)")


def test_confirm_applies_to_top_n() -> None:
    steps = history([(0, six()), (1, six(d=75)), (2, six(d=75))])
    assert [(i, e.model, verb(e)) for i, e in run("top_n top=3 margin=0 confirm=2", steps).events] == [
        (2, "d", "in"), (2, "c", "out")]


# --- noise: attribution ---------------------------------------------------------------------------

def test_a_new_entrant_pushing_twenty_models_down_is_one_event() -> None:
    twenty = [us(f"model-{i:02d}", 100.0 - i) for i in range(1, 21)]
    steps = history([(0, twenty), (1, [cn(DS, 150), *twenty])])
    rules = ["new_model top=10", "top_n top=10", "rank_change by=1"]
    got = [(i, e.kind, e.model) for i, e in run(rules, steps).events]
    assert got == [(1, "new_model", DS), (1, "top_n", DS)]


def test_a_model_leaving_moves_nobody_else() -> None:
    twenty = [us(f"model-{i:02d}", 100.0 - i) for i in range(1, 21)]
    steps = history([(0, twenty), (1, twenty[1:])])
    assert run("rank_change by=1", steps).events == []


# --- noise: top-N tables --------------------------------------------------------------------------

FULL = [us(f"m{i}", 100.0 - i) for i in range(1, 9)]  # m1..m8, m3 at #3


@pytest.mark.parametrize(("listed", "expected"), [
    # Listing ranks 1..4 of a top-3 rule with margin 2: m3 may be #5, still inside N + margin.
    (4, [(1, "m4", "in")]),
    # Listing ranks 1..5: a model not shown is past #5, so it has left.
    (5, [(1, "m4", "in"), (1, "m3", "out")]),
], ids=["too-few-rows", "enough-rows"])
def test_absent_from_a_truncated_table_is_not_gone(listed: int, expected: list[tuple[Any, ...]]) -> None:
    without_m3 = [e for e in FULL if e.name != "m3"][:listed]
    steps = [snap(0, FULL), snap(1, without_m3, truncated=True)]
    assert [(i, e.model, verb(e)) for i, e in run("top_n top=3 margin=2", steps).events] == expected


def test_truncated_table_keeps_state_until_the_model_is_shown_again() -> None:
    without_m3 = [e for e in FULL if e.name != "m3"][:4]
    steps = [snap(0, FULL), snap(1, without_m3, truncated=True), snap(2, FULL)]
    assert [(i, e.model, verb(e)) for i, e in run("top_n top=3 margin=2", steps).events] == [
        (1, "m4", "in")]


def test_absent_from_a_truncated_table_is_no_new_model_when_shown_again() -> None:
    steps = [snap(0, FULL), snap(1, FULL[:3], truncated=True), snap(2, FULL)]
    assert run(["new_model", "rank_change by=1"], steps).events == []


# --- noise: renames -------------------------------------------------------------------------------

RENAME_RULES = ["new_model", "new_leader", "top_n top=3", "overtake groups=china,west"]


@cases(
    Case("same score under a new name", RENAME_RULES,
         [(0, [us("gpt-4o", 72.9), cn(DS, 70), us(O3, 60), fr(MI, 50)]),
          (1, [us("gpt-4o-2024-05-13", 72.9), cn(DS, 70), us(O3, 60), fr(MI, 50)])],
         []),
    Case("'X (whole)' -> 'X' with a new score", RENAME_RULES,
         [(0, [us("claude-3.5-sonnet (whole)", 78.2), cn(DS, 70), us(O3, 60), fr(MI, 50)]),
          (1, [us("claude-3.5-sonnet", 79.0), cn(DS, 70), us(O3, 60), fr(MI, 50)])],
         []),
    Case("'X (deprecated)' -> 'X'", RENAME_RULES,
         [(0, [us(GPT, 80), cn("DeepSeek Coder V2 0724 (deprecated)", 72.9), us(O3, 60)]),
          (1, [us(GPT, 80), cn("DeepSeek Coder V2 0724", 72.9), us(O3, 60)])],
         []),
    Case("a dated release replacing the undated name", RENAME_RULES,
         [(0, [us(GPT, 80), us("gpt-4", 70), cn(DS, 60), fr(MI, 50)]),
          (1, [us(GPT, 80), us("gpt-4-0314", 69), cn(DS, 60), fr(MI, 50)])],
         []),
    # LMArena, 2024-09-17: Llama 3.1 405B became a bf16 row (#5) and an fp8 row (#6), same rating.
    Case("one model split into precision variants", [*RENAME_RULES[:2], "top_n top=2 margin=0"],
         [(0, [us(GPT, 1300), model("Meta-Llama-3.1-405b-Instruct", 1266, "Meta", "US"), cn(DS, 1250)]),
          (1, [us(GPT, 1300), model("Meta-Llama-3.1-405b-Instruct-bf16", 1266, "Meta", "US", rank=2),
               model("Meta-Llama-3.1-405b-Instruct-fp8", 1266, "Meta", "US", rank=3), cn(DS, 1250)])],
         []),
    # A different model of the same organization that appears as the old one leaves is new
    # (Aider, 2024-06-17: deepseek-coder went, Deepseek Coder V2 came in at #1).
    Case("a successor is not a rename", RENAME_RULES,
         [(0, [us(GPT, 72.9), us(O3, 68), cn("deepseek-coder", 54.5), fr(MI, 50)]),
          (1, [cn("Deepseek Coder V2", 75.2), us(GPT, 72.9), us(O3, 68), fr(MI, 50)])],
         [(1, "new_model", "Deepseek Coder V2"), (1, "new_leader", "Deepseek Coder V2"),
          (1, "top_n", "Deepseek Coder V2"), (1, "top_n", "deepseek-coder"),
          (1, "overtake", "Deepseek Coder V2")]),
    # LMArena, 2024-10-29: "Claude 3.5 Sonnet" became "(20240620)" with its rating, and the new
    # "(20241022)" release came in: one rename, one new model.
    Case("a parenthesised release date names a new model", "new_model",
         [(0, [us(GPT, 1300), us("Claude 3.5 Sonnet", 1268)]),
          (1, [us(GPT, 1300), us("Claude 3.5 Sonnet (20241022)", 1286),
               us("Claude 3.5 Sonnet (20240620)", 1268)])],
         [(1, "new_model", "Claude 3.5 Sonnet (20241022)")]),
)
def test_renames_are_not_new_models(case: Case) -> None:
    assert project(case, lambda i, e: (i, e.kind, e.model)) == case.expected


def test_a_renamed_model_keeps_its_state() -> None:
    rows = [cn(DS, 70), us(O3, 60), fr(MI, 50)]
    steps = history([
        (0, [us("gpt-4o", 72.9), *rows]),
        (1, [us("gpt-4o-2024-05-13", 72.9), *rows]),          # renamed: nothing
        (2, [*rows, us("gpt-4o-2024-05-13", 40)]),              # then falls: it leaves, under its new name
    ])
    result = run(["top_n top=1 margin=0", "new_leader", "overtake groups=china,west"], steps)
    assert result.evaluations[1].events == ()
    state = result.evaluations[1].rule_states["top_n top=1 margin=0"]
    assert state.confirmed == {"gpt-4o-20240513": "in"}
    assert result.evaluations[1].rule_states["new_leader"].confirmed == {"leader": "gpt-4o-20240513"}
    got = [(i, e.kind, e.model, e.other) for i, e in result.events]
    assert got == [
        (2, "top_n", DS, None), (2, "top_n", "gpt-4o-2024-05-13", None),
        (2, "new_leader", DS, "gpt-4o-2024-05-13"), (2, "overtake", DS, O3)]


@pytest.mark.parametrize(("name", "key"), [
    ("claude-3.5-sonnet (whole)", "claude-3-5-sonnet"),
    ("gpt-4o (2024-05-13) (diff)", "gpt-4o-20240513"),
    ("o3 (high)", "o3"),
    ("claude-3-7-sonnet-20250219 (32k thinking tokens)", "claude-3-7-sonnet-20250219"),
    ("Meta-Llama-3.1-405b-Instruct-bf16", "llama-3-1-405b-instruct"),
    ("Claude 3.5 Sonnet (20241022)", "claude-3-5-sonnet-20241022"),
    ("DeepSeek R1 (0528)", "deepseek-r1-0528"),
    ("Command R+ (08-24)", "command-r-plus-08-24"),
    ("Gopher (280B)", "gopher-280b"),
    ("Amazon Q Developer Agent (v20240719-dev)", "amazon-q-developer-agent-v20240719-dev"),
])
def test_base_key_drops_settings_but_keeps_releases(name: str, key: str) -> None:
    assert base_key(Entry(name, canonical_key(name), 1.0, 1)) == key


def test_find_renames_maps_old_keys_to_new() -> None:
    prev = snap(0, [us("gpt-4o", 72.9), us("openai/gpt-5", 88), us("openai/gpt-5", 80), cn(DS, 70)])
    curr = snap(1, [us("gpt-5 (high)", 88), us("gpt-5 (medium)", 80), us("gpt-4o-2024-05-13", 72.9),
                    cn(DS, 70)])
    found = find_renames(prev, curr, frozenset(e.model_key for e in prev.entries))
    assert found.keys == {"gpt-4o": "gpt-4o-20240513", "gpt-5": "gpt-5-high"}
    assert found.split_off == frozenset({"gpt-5-medium"})
    assert find_renames(None, curr, frozenset()).keys == {}


# --- noise: change of method ----------------------------------------------------------------------

ALL_RULES = ["overtake groups=china,west", "new_leader", "new_model", "top_n top=3", "rank_change by=1",
             "gap groups=china,west threshold=6", "score threshold=85", "board_changed",
             "share group=china count=2 top=3", "rival model=deepseek-v3 rival=west boards=test/* at_least=1"]
BEFORE = [us(GPT, 90), us(O3, 80), cn(DS, 70), fr(MI, 60)]
AFTER = [cn(DS, 95), qwen(QW, 91), us(GPT, 90), us(O3, 80), fr(MI, 60)]  # DS passes, QW is new


def reshuffled(day: float) -> tuple[Snapshot, Snapshot]:
    rows = [us(f"model-{i:02d}", 1000.0 - i) for i in range(20)]
    flipped = [replace(e, score=981.0 + i) for i, e in enumerate(rows)]  # same scale, order reversed
    return snap(day, rows), snap(day + 1, flipped)


def rescaled(day: float) -> tuple[Snapshot, Snapshot]:
    rows = [us(f"model-{i:02d}", 100.0 - i) for i in range(20)]
    return snap(day, rows), snap(day + 1, [replace(e, score=e.score * 10) for e in rows])


@pytest.mark.parametrize(("prev", "curr", "reason"), [
    (snap(0, BEFORE, method="default"), snap(1, AFTER, method="style-control"),
     "method default -> style-control"),
    (snap(0, BEFORE, origin="a-csv"), snap(1, AFTER, origin="b-json"), "recording a-csv -> b-json"),
    (*reshuffled(0), "most models changed places at once"),
    (*rescaled(0), "most scores moved at once"),
], ids=["method", "origin", "reshuffle", "rescale"])
def test_change_of_method_is_one_board_changed_event(prev: Snapshot, curr: Snapshot, reason: str) -> None:
    assert method_change(prev, curr) == reason
    result = run(ALL_RULES, [snap(-1, prev.entries, method=prev.method, origin=prev.origin), prev, curr])
    assert result.evaluations[2].changed == reason
    got = [(e.kind, e.subject, e.model, e.confidence) for e in result.evaluations[2].events]
    assert got == [("board_changed", "method", None, "n/a")]
    assert result.evaluations[2].events[0].message == (
        f"test/board: the board changed ({reason}); per-model alerts pause for this update")
    quiet = run([r for r in ALL_RULES if r != "board_changed"],
                [snap(-1, prev.entries, method=prev.method, origin=prev.origin), prev, curr])
    assert quiet.evaluations[2].events == ()


def test_after_a_change_of_method_the_new_table_is_the_baseline() -> None:
    steps = [snap(0, BEFORE, method="default"), snap(1, BEFORE, method="default"),
             snap(2, AFTER, method="style-control"),
             snap(3, AFTER, method="style-control"),                       # same: nothing
             snap(4, [us(GPT, 99), *AFTER[:2], *AFTER[3:]], method="style-control")]  # GPT back on top
    got = [(i, e.kind, e.model) for i, e in run(ALL_RULES, steps).events]
    assert got == [(2, "board_changed", None),
                   (4, "overtake", GPT), (4, "new_leader", GPT),
                   (4, "rank_change", GPT), (4, "rank_change", DS), (4, "rank_change", QW),
                   (4, "rival", DS)]  # DS no longer leads the best west model


@pytest.mark.parametrize(("prev", "curr"), [
    (snap(0, BEFORE, method="default"), snap(1, AFTER, method="default")),
    (snap(0, BEFORE), snap(1, AFTER, method="style-control")),  # a method named for the first time
    (snap(0, BEFORE, origin="a-csv"), snap(1, AFTER, origin="a-csv")),
    (snap(0, FULL), snap(1, [replace(e, score=e.score + 0.5) for e in FULL])),  # everyone a little
], ids=["same-method", "method-first-named", "same-origin", "small-moves"])
def test_ordinary_updates_are_no_change_of_method(prev: Snapshot, curr: Snapshot) -> None:
    assert method_change(prev, curr) is None


# --- first snapshot and mixed entries --------------------------------------------------------------

def test_first_snapshot_is_a_baseline() -> None:
    rules = [parse_rule(r, GROUPS) for r in ALL_RULES]
    first = snap(0, AFTER)
    result = evaluate(None, first, rules, {}, BoardState(), GROUPS, first.as_of)
    assert result.events == () and result.changed is None
    assert result.board_state.snapshots == 1
    assert result.board_state.seen == frozenset(e.model_key for e in AFTER)
    # A previous table but an empty board state (nothing remembered) is a baseline too.
    again = evaluate(snap(-1, BEFORE), first, rules, {}, BoardState(), GROUPS, first.as_of)
    assert again.events == ()


def test_first_snapshot_on_a_ci_board_is_a_baseline() -> None:
    assert run(["overtake groups=china,west", "new_leader", "new_model"], CI_HISTORY[1:2]).events == []


@pytest.mark.parametrize("rule", [
    "overtake groups=china,west", "overtake groups=china,us", "new_leader group=china",
    "new_leader group=us", "top_n top=1 group=china", "new_model group=china",
    "gap groups=china,west threshold=15", "score threshold=85 group=china",
])
def test_a_mixed_entry_is_never_credited_to_a_group(rule: str) -> None:
    steps = history([
        (0, [us(GPT, 80), cn(DS, 70)]),
        (1, [mixed("DeepSeek R1 + claude-3-5-sonnet-20241022", 90), us(GPT, 80), cn(DS, 70)]),
    ])
    assert run(rule, steps).events == []


def test_an_architect_pair_of_two_countries_is_mixed(identity: Identity) -> None:
    pair = identity.entry("DeepSeek R1 + claude-3-5-sonnet-20241022", 64.0, 1)
    assert pair.mixed and pair.country is None
    steps = [snap(0, [us(GPT, 62), cn(DS, 57)]), snap(1, [pair, us(GPT, 62), cn(DS, 57)])]
    got = [(i, e.kind, e.model) for i, e in run(["overtake groups=china,west", "new_leader"], steps).events]
    assert got == [(1, "new_leader", pair.name)]


# --- the Event ------------------------------------------------------------------------------------

def busy_history() -> list[Snapshot]:
    return [snap(0, BEFORE), snap(1, BEFORE), snap(2, AFTER), snap(3, AFTER, method="x"),
            snap(4, AFTER, method="y")]


def test_every_event_has_its_fields() -> None:
    snaps = busy_history()
    later = [s.as_of + timedelta(hours=3) for s in snaps]  # evaluated after the snapshot's date
    result = run(ALL_RULES, snaps, later)
    assert {e.kind for _, e in result.events} == set(KINDS)
    for i, e in result.events:
        assert e.kind in KINDS and e.board == "test/board"
        assert e.at == snaps[i].as_of and e.at.tzinfo is not None
        assert e.rule in ALL_RULES and e.rule.startswith(e.kind)
        assert e.confidence in CONFIDENCES
        assert re.fullmatch(r"[0-9a-f]{24}", e.dedupe_key)
        assert e.message.startswith("test/board: ") and len(e.message) > 30
        if e.kind == "board_changed":
            assert e.model is None and e.rank_after is None
            continue
        assert e.model is not None
        assert e.rank_after is not None and e.score_after is not None
        if e.kind in ("overtake", "gap"):
            assert e.other is not None and e.groups == CW
        else:
            assert e.groups, e
        data = e.to_json()
        assert data["at"] == e.at.isoformat() and data["groups"] == list(e.groups)
        assert set(data) >= {"at", "kind", "board", "model", "other", "groups", "confidence", "message"}
    assert len({e.dedupe_key for _, e in result.events}) == len(result.events)


def test_rank_and_score_before_and_after() -> None:
    events = dict((e.kind, e) for _, e in run(ALL_RULES, [snap(0, BEFORE), snap(1, AFTER)]).events)
    overtake = events["overtake"]
    assert (overtake.rank_before, overtake.rank_after, overtake.score_before, overtake.score_after) == (
        3, 1, 70, 95)
    new = events["new_model"]
    assert (new.model, new.rank_before, new.rank_after, new.score_before, new.score_after) == (
        QW, None, 2, None, 91)


def test_dedupe_key_is_stable_and_depends_on_the_time() -> None:
    first = [e.dedupe_key for _, e in run(ALL_RULES, [snap(0, BEFORE), snap(1, AFTER)]).events]
    again = [e.dedupe_key for _, e in run(ALL_RULES, [snap(0, BEFORE), snap(1, AFTER)]).events]
    # Evaluated at another time, the same update gives the same keys (a restart, a replay).
    later = [e.dedupe_key for _, e in run(ALL_RULES, [snap(0, BEFORE), snap(1, AFTER)],
                                          [T0, T0 + timedelta(days=30)]).events]
    moved = [e.dedupe_key for _, e in run(ALL_RULES, [snap(0, BEFORE), snap(2, AFTER)]).events]
    assert first and first == again == later
    assert not set(first) & set(moved)


def test_dedupe_key_differs_between_rules_of_one_kind() -> None:
    """Two thresholds crossed in one update are two alerts, not one found twice."""
    steps = history([(0, [us(GPT, 70)]), (1, [us(GPT, 95)])])
    events = [e for _, e in run(["score threshold=80", "score threshold=90"], steps).events]
    assert [e.rule for e in events] == ["score threshold=80", "score threshold=90"]
    assert events[0].dedupe_key != events[1].dedupe_key


@pytest.mark.parametrize(("rules", "same"), [
    (["score threshold=80", "score threshold=90"], False),
    (["top_n top=3", "top_n top=10"], False),
    (["gap groups=china,west threshold=5", "gap groups=china,west threshold=8"], False),
    (["gap groups=china,west threshold=5", "gap groups=china,west threshold=5 unit=percent"], False),
    (["overtake groups=china,west", "overtake groups=china,west confidence=clear"], True),
    (["new_model", "new_model top=10"], True),
    (["new_leader", "new_leader group=china"], True),
    (["top_n top=3", "top_n top=3 margin=1"], True),
], ids=["score", "top_n", "gap-threshold", "gap-unit", "overtake", "new_model", "new_leader", "top_n-margin"])
def test_dedupe_key_is_one_event_whichever_rules_find_it(rules: list[str], same: bool) -> None:
    """Parameters that change what an outcome means are in the key; filters are not."""
    rows = [us(GPT, 90), us(O3, 80), cn(DS, 70), fr(MI, 50)]
    steps = history([(0, rows), (1, [qwen(QW, 92), *rows])])  # a new Chinese #1, 2 points ahead
    one, two = ([e.dedupe_key for _, e in run(r, steps).events if e.model == QW] for r in rules)
    assert len(one) == len(two) == 1
    assert (one == two) is same


def test_dedupe_key_of_one_move_found_by_two_rank_change_rules() -> None:
    steps = history([(0, eight()), (1, eight(g=85))])
    one, two = ([e.dedupe_key for _, e in run(r, steps).events]
                for r in ("rank_change by=3", "rank_change by=5"))
    assert len(one) == 1 and one == two


@pytest.mark.parametrize(("rules", "steps", "message"), [
    ("overtake groups=china,west",
     [(0, [us(GPT, 80), cn(DS, 70)]), (1, [cn(DS, 82.5), us(GPT, 80)])],
     "test/board: china model DeepSeek-V3 (DeepSeek, CN) now ranks above the best west model "
     "GPT-5 (OpenAI, US): #1 vs #2, 82.5 vs 80"),
    ("new_leader",
     [(0, [us(GPT, 80), cn(DS, 70)]), (1, [cn(DS, 82.5), us(GPT, 80)])],
     "test/board: new #1: DeepSeek-V3 (DeepSeek, CN) with 82.5, taking it from GPT-5 (OpenAI, US)"),
    ("new_leader",
     [(0, [us(GPT, 80), cn(DS, 70)]), (1, [us(GPT, 80), cn(DS, 80)])],
     "test/board: DeepSeek-V3 (DeepSeek, CN) now shares #1 (DeepSeek-V3, GPT-5), score 80"),
    ("top_n top=3 margin=1", [(0, six()), (1, six(d=75))],
     "test/board: d (OpenAI, US) entered the top 3 at #3, was #4"),
    ("top_n top=3 margin=1 direction=leave", [(0, six()), (1, six(c=45))],
     "test/board: c (OpenAI, US) left the top 3 (now #5)"),
    ("gap groups=china,west threshold=5",
     [(0, [us(GPT, 80), cn(DS, 70)]), (1, [us(GPT, 80), cn(DS, 77)])],
     "test/board: the gap between the best china model DeepSeek-V3 (DeepSeek, CN) (77) and the best "
     "west model GPT-5 (OpenAI, US) (80) fell below 5 points: 3.0 points"),
    ("score threshold=80", [(0, [us(GPT, 78)]), (1, [us(GPT, 81.25)])],
     "test/board: GPT-5 (OpenAI, US) rose to or above 80: now 81.25"),
    ("new_model top=10", [(0, [us(GPT, 80)]), (1, [us(GPT, 80), qwen(QW, 75)])],
     "test/board: new model Qwen3-Max (Alibaba, CN) entered the top 10 at #2 with 75"),
    ("rank_change by=3", [(0, eight()), (1, eight(g=85))],
     "test/board: g (OpenAI, US) passed 5 of the models listed in both updates "
     "(rank as published: #7 -> #2)"),
])
def test_messages(rules: str, steps: list[Step], message: str) -> None:
    (_, event), = run(rules, history(steps)).events
    assert event.message == message


def test_score_message_on_a_lower_is_better_board() -> None:
    steps = history([(0, [us(GPT, 1.2)]), (1, [us(GPT, 0.9)]), (2, [us(GPT, 1.1)])], COST)
    messages = [e.message for _, e in run("score threshold=1 direction=both", steps).events]
    assert messages == ["test/cost: GPT-5 (OpenAI, US) fell to or below 1: now 0.9",
                        "test/cost: GPT-5 (OpenAI, US) rose above 1: now 1.1"]


def test_evaluate_is_pure() -> None:
    """The same call twice gives the same result; the states passed in are not changed."""
    rules = [parse_rule(r, GROUPS) for r in ALL_RULES]
    base = evaluate(None, snap(0, BEFORE), rules, {}, BoardState(), GROUPS, T0)
    states = dict(base.rule_states)
    frozen = {k: (dict(v.confirmed), dict(v.streak), dict(v.last_fired)) for k, v in states.items()}
    one = evaluate(snap(0, BEFORE), snap(1, AFTER), rules, states, base.board_state, GROUPS, T0)
    two = evaluate(snap(0, BEFORE), snap(1, AFTER), rules, states, base.board_state, GROUPS, T0)
    assert one == two
    assert {k: (dict(v.confirmed), dict(v.streak), dict(v.last_fired)) for k, v in states.items()} == frozen
