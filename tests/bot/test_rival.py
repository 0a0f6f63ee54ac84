"""Rule `rival`: a model against its rival across the boards of a span, one state for all of them, through
the Alerter and its database (as polls run it), through `why`, and from chat (names resolved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlite_utils import Database

from leaderwatch.alerts.models import Event, RuleError
from leaderwatch.alerts.ruleset import parse_rule
from leaderwatch.bot.commands import Invocation, dispatch
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.store import store_all
from leaderwatch.sources.base import Board, Entry, make_snapshot
from leaderwatch.sources.identity import default_groups
from leaderwatch.storage.rule_states import SPANNING, load_rule_states
from leaderwatch.storage.subscriptions import add_subscription
from tests.helpers import build_context

T0 = datetime(2025, 3, 1, tzinfo=UTC)
BOARDS = [Board(f"bench/{n}", n, "score") for n in ("a", "b", "c")]
RULE = "rival model=qwen-vl rival=gpt-v boards=bench/* at_least=2"


def table(board: Board, day: int, scores: dict[str, float]) -> list:
    """A board's table of the day: the models by score, qwen-vl Chinese, gpt-v and o-v American."""
    rows = sorted(scores.items(), key=lambda kv: -kv[1])
    entries = [Entry(name, name, score, rank, organization="Alibaba" if name.startswith("qwen") else "OpenAI",
                     countries=("CN",) if name.startswith("qwen") else ("US",))
               for rank, (name, score) in enumerate(rows, start=1)]
    when = T0 + timedelta(days=day)
    return [make_snapshot(board, when, when, entries)]


class Pipeline:
    """Tables stored as polls store them, the Alerter running the subscribed rival rule on each change."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.groups = default_groups()
        self.events: list[Event] = []
        add_subscription(self.db, "slack", "C1", "bench/*", RULE, "U1", T0)

    def store(self, board: Board, day: int, **scores: float) -> list[Event]:
        before = len(self.events)
        now = T0 + timedelta(days=day, hours=1)
        named = {k.replace("_", "-"): v for k, v in scores.items()}
        for stored in store_all(self.db, table(board, day, named), "test"):
            if stored.result.stored:
                Alerter(self.db, [], self.groups, lambda: now, self.events.append).on_change(stored)
        return self.events[before:]


def test_fires_once_for_the_span_when_the_model_comes_to_lead_on_enough_boards(any_db: Database) -> None:
    p = Pipeline(any_db)
    a, b, c = BOARDS
    for board in BOARDS:  # every board's first table: baselines
        assert p.store(board, 0, gpt_v=90, qwen_vl=80, o_v=70) == []
    assert p.store(a, 1, qwen_vl=95, gpt_v=90, o_v=70) == []  # leads on 1 of 3: short of 2 (now known)
    [event] = p.store(b, 2, qwen_vl=95, gpt_v=90, o_v=70)     # 2 of 3: leads
    assert event.kind == "rival" and event.board == "bench/b"
    assert event.message == ("bench/b: qwen-vl now leads gpt-v on 2 of the 3 boards of bench/* that list "
                             "both (bench/b #1 vs #2, bench/a #1 vs #2)")
    # Board c changing does not report the same lead again: the state is one for the span.
    assert p.store(c, 3, gpt_v=91, qwen_vl=80, o_v=70) == []
    assert set(load_rule_states(p.db, SPANNING)) == {RULE}
    assert RULE not in load_rule_states(p.db, "bench/c")
    [lost] = p.store(a, 4, gpt_v=99, qwen_vl=95, o_v=70)      # back to 1 of 3
    assert lost.message == ("bench/a: qwen-vl no longer leads gpt-v on 2 of the boards of bench/* that list "
                            "both: 1 of 3")


def test_a_group_rival_is_its_best_model_other_than_the_model(any_db: Database) -> None:
    p = Pipeline(any_db)
    rule = "rival model=qwen-vl rival=west boards=bench/a at_least=1"
    add_subscription(p.db, "slack", "C1", "bench/a", rule, "U1", T0)
    a = BOARDS[0]
    assert p.store(a, 0, gpt_v=90, qwen_vl=80, o_v=70) == []
    events = [e for e in p.store(a, 1, qwen_vl=95, gpt_v=90, o_v=70) if e.rule == rule]
    assert [e.message for e in events] == [
        "bench/a: qwen-vl now leads the best west model on 1 of the 1 boards of bench/a that list both "
        "(bench/a #1 vs #2)"]


async def test_why_explains_the_rule_with_the_span_in_view(any_db: Database) -> None:
    p = Pipeline(any_db)
    a, b, _ = BOARDS
    for board in BOARDS:
        p.store(board, 0, gpt_v=90, qwen_vl=80, o_v=70)
    p.store(a, 1, qwen_vl=95, gpt_v=90, o_v=70)
    p.store(b, 2, qwen_vl=95, gpt_v=90, o_v=70)
    ctx = build_context(p.db, lambda: T0 + timedelta(days=3))
    reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "why bench/b"))
    [field] = [f for f in reply.fields if f.name == RULE]
    assert field.value.startswith("fired: qwen-vl now leads gpt-v on 2 of the 3 boards")
    other = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", "why bench/a"))
    [field] = [f for f in other.fields if f.name == RULE]
    assert field.value == ("quiet: qwen-vl leads gpt-v on 2 of 3 boards listing both, at least 2, as before "
                           "(as the boards stand now: the rule last ran on another board's update)")


async def test_subscribing_in_chat_resolves_the_names_and_takes_the_pattern_as_the_span(
        any_db: Database) -> None:
    p = Pipeline(any_db)
    for board in BOARDS:
        p.store(board, 0, gpt_v=90, qwen_vl=80, o_v=70)
    ctx = build_context(p.db, lambda: T0 + timedelta(days=1))
    reply = await dispatch(ctx, Invocation("slack", "C2", "U1", "alice",
                                           "subscribe bench/* rival model=qwen rival=gpt at_least=2",
                                           can_configure=True))
    assert not reply.error, reply.text
    assert "`rival model=qwen-vl rival=gpt-v boards=bench/* at_least=2`" in reply.text
    wrong = await dispatch(ctx, Invocation("slack", "C2", "U1", "alice", "subscribe bench/* rival model=zzz "
                                           "rival=gpt", can_configure=True))
    assert wrong.error and wrong.text.startswith("No model `zzz` on any board's current table.")


def test_the_same_model_twice_is_refused() -> None:
    with pytest.raises(RuleError, match="needs two different models"):
        parse_rule("rival model=qwen-vl rival=Qwen-VL", list(default_groups()))
    with pytest.raises(RuleError, match="needs model=VALUE"):
        parse_rule("rival rival=gpt-v", list(default_groups()))
