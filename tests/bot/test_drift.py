"""Sources that say when they change (issue 13 item 5): a payload in a shape the parser does not know, or
a table shrunk by more than half, stores nothing, marks the source `drifted` (boards, /healthz,
/metrics) and queues ONE operators' message per ops channel; the recovery is queued once too.

Real pieces: the Aider source fetching recorded payloads (tests/data/drift) through the Fetcher and
`httpx.MockTransport`, the Poller, SQLite, the command layer, the health and metrics functions. The
chat platforms are in tests/e2e/test_drift_e2e.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlite_utils import Database

from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.app import build_app, ops_channels, schedule
from leaderwatch.bot.commands import CommandContext, Invocation, dispatch
from leaderwatch.bot.pipeline import drift
from leaderwatch.bot.pipeline.drift import OpsChannel
from leaderwatch.bot.pipeline.poller import Poller, PollResult
from leaderwatch.bot.runtime.http_server import Freshness, health
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.bot.settings import ConfigError, Settings, load_settings
from leaderwatch.sources.aider import EDIT_URL, POLYGLOT_URL, AiderSource
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity, load_groups
from leaderwatch.storage import snapshots as store
from leaderwatch.storage import status
from leaderwatch.storage.events import event_by_key, recent_events
from tests.helpers import Clock, no_sleep

DATA = Path(__file__).resolve().parent.parent / "data" / "drift"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPS = (OpsChannel("slack", "C0OPS"), OpsChannel("discord", "920000000000000001"))

GOOD = (DATA / "polyglot_good.yml").read_bytes()


def good(score: float) -> bytes:
    """The good file with its first run's score changed: a new table (Aider's source dates a live table
    by the wall clock, so the same table twice within a second would be one snapshot)."""
    return GOOD.replace(b"pass_rate_2: 35.6", f"pass_rate_2: {score}".encode(), 1)

DRIFTS = {
    "renamed column": ((DATA / "polyglot_renamed.yml").read_bytes(),
                       "lacks required field(s) pass_rate_2"),
    "half the rows": ((DATA / "polyglot_half.yml").read_bytes(),
                      "aider/polyglot: 8 rows where the last stored table had 20; held until the next poll "
                      "returns the same table"),
    "HTML error page": ((DATA / "error_page.html").read_bytes(), "got an HTML page where data was expected"),
}
"""Each drift: the payload Aider's site serves as the polyglot file, and what the operators are told."""


def aider_context(db: Database, clock: Clock) -> CommandContext:
    """A command context over `db` knowing Aider's boards (the shipped identity and default groups)."""
    identity = Identity.load()
    groups = load_groups({}, identity)
    return CommandContext(db, identity, groups, default_rules(list(groups)),
                          {b.id: b for b in AiderSource(identity).boards()}, clock)


class AiderSite:
    """Aider's raw files: the polyglot file is `polyglot` (bytes, or an HTTP status), the archived
    code editing file answers 304."""

    def __init__(self, polyglot: bytes | int = GOOD) -> None:
        self.polyglot: bytes | int = polyglot

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == EDIT_URL:
            return httpx.Response(304)
        assert str(request.url) == POLYGLOT_URL, request.url
        if isinstance(self.polyglot, int):
            return httpx.Response(self.polyglot, text="upstream trouble")
        return httpx.Response(200, content=self.polyglot)


class Rig:
    """A Poller over one database polling Aider's (fake) site, with the operators' channels given."""

    def __init__(self, db: Database, clock: Clock, ops: tuple[OpsChannel, ...] = OPS) -> None:
        self.db, self.clock, self.site = db, clock, AiderSite()
        self.http = httpx.AsyncClient(transport=httpx.MockTransport(self.site))
        self.metrics = Metrics(sources=["aider"])
        self.metrics.watch_storage(db)
        self.poller = Poller(db, Fetcher(self.http, sleep=no_sleep), clock, metrics=self.metrics, ops=ops)
        self.ctx = aider_context(db, clock)

    async def poll(self, polyglot: bytes | int) -> PollResult:
        """One poll an hour after the last, the site serving `polyglot`."""
        self.clock.advance(hours=1)
        self.site.polyglot = polyglot
        return await self.poller.poll(AiderSource(self.ctx.identity))

    def history(self) -> list[tuple[int, str]]:
        """The stored polyglot snapshots: (rows, content hash), oldest first."""
        return [(len(s.entries), s.content_hash) for _, s in store.history(self.db, "aider/polyglot")]

    def outbox(self) -> list[dict[str, Any]]:
        return list(self.db.table("outbox").rows_where(order_by="id"))

    async def ask(self, text: str) -> Any:
        return await dispatch(self.ctx, Invocation("slack", "C0GENERAL", "U0USER", "ada", text))


@pytest.fixture
async def rig(fresh_db: Database) -> Any:
    rig = Rig(fresh_db, Clock(T0))
    yield rig
    await rig.http.aclose()


def ops_messages(rig: Rig) -> list[tuple[str, str, str, str]]:
    """Each queued operators' message: (platform, channel, drifted|recovered, its first line)."""
    out = []
    for row in rig.outbox():
        event = event_by_key(rig.db, row["event_key"])
        assert event is not None and event.kind == drift.KIND
        out.append((row["platform"], row["channel_id"], event.value, event.message.split("\n")[0]))
    return out


@pytest.mark.parametrize("name", list(DRIFTS))
async def test_a_drift_stores_nothing_marks_the_source_and_is_told_once(rig: Rig, name: str) -> None:
    payload, told = DRIFTS[name]
    assert (await rig.poll(GOOD)).ok
    history = rig.history()
    assert [rows for rows, _ in history] == [20]

    result = await rig.poll(payload)

    assert not result.ok and result.drifted and result.ops_queued == 2
    assert rig.history() == history  # the stored history is unchanged
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "drifted" and st.drift is not None and told in st.drift
    expected_url = "https://aider.chat/docs/leaderboards/" if name == "half the rows" else POLYGLOT_URL
    assert st.drift_url == expected_url and st.drifted_at == rig.clock.now
    assert [(p, c, v) for p, c, v, _ in ops_messages(rig)] == [
        ("slack", "C0OPS", "drifted"), ("discord", "920000000000000001", "drifted")]
    [event] = {event_by_key(rig.db, r["event_key"]) for r in rig.outbox()}
    assert event is not None and told in event.message and f"Origin: {expected_url}" in event.message
    assert "keeps the last good table" in event.message

    # The same drift at the next polls: still drifted, nothing more for the operators. (The shrunk table
    # changes a little each time: the same table again would be confirmed, see below.)
    again = payload if name != "half the rows" else payload.replace(b"pass_rate_2: 35.6", b"pass_rate_2: 37")
    for _ in range(3):
        later = await rig.poll(again)
        assert later.drifted and later.ops_queued == 0
        payload, again = again, payload
    assert len(rig.outbox()) == 2 and rig.history() == history
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "drifted" and st.consecutive_failures == 4
    assert st.drifted_at == T0.replace(hour=11)  # since the first drifted poll

    # The origin is back to its known shape: stored as usual, one "recovered" message per channel.
    recovered = await rig.poll(good(36.0))
    assert recovered.ok and not recovered.drifted and recovered.ops_queued == 2
    assert [rows for rows, _ in rig.history()] == [20, 20]
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "ok" and st.drift is None and st.consecutive_failures == 0
    assert [(p, v) for p, _, v, _ in ops_messages(rig)] == [
        ("slack", "drifted"), ("discord", "drifted"), ("slack", "recovered"), ("discord", "recovered")]
    assert ops_messages(rig)[-1][3].startswith("aider reads fine again (drifted since 2026-03-02: ")
    assert (await rig.poll(good(36.5))).ok and len(rig.outbox()) == 4  # good after good: nothing told
    # The operators' messages are not among the rules' events (`events`, the weekly report).
    assert rig.db.table("events").count == 2 and recent_events(rig.db, T0) == []


async def test_a_shrunk_table_returned_again_is_stored_as_the_new_truth(rig: Rig) -> None:
    half = DRIFTS["half the rows"][0]
    assert (await rig.poll(GOOD)).ok
    held = await rig.poll(half)
    assert held.drifted and [rows for rows, _ in rig.history()] == [20]
    [h] = status.held_tables(rig.db)
    assert (h.board_id, h.rows, h.previous_rows) == ("aider/polyglot", 8, 20)
    boards = await rig.ask("boards")
    assert [(b, n) for b, _, n in boards.table] == [("board", "models"),
                                                    ("aider/polyglot (held: 8 rows)", "20")]

    confirmed = await rig.poll(half)

    assert confirmed.ok and [s.snapshot.board.id for s in confirmed.changed] == ["aider/polyglot"]
    assert [rows for rows, _ in rig.history()] == [20, 8]
    assert status.held_tables(rig.db) == []
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "ok" and not st.is_drifted
    [*_, (_, _, value, _)] = ops_messages(rig)
    assert value == "recovered" and len(rig.outbox()) == 4
    event = event_by_key(rig.db, rig.outbox()[-1]["event_key"])
    assert event is not None and "Stored as the new table after the next poll returned it again: " \
        "aider/polyglot." in event.message


async def test_a_full_table_after_a_held_one_drops_the_hold(rig: Rig) -> None:
    assert (await rig.poll(GOOD)).ok
    assert (await rig.poll(DRIFTS["half the rows"][0])).drifted
    back = await rig.poll(good(36.0))
    assert back.ok and [rows for rows, _ in rig.history()] == [20, 20]
    assert status.held_tables(rig.db) == []
    # Exactly half the rows is not a drift (the check is "fewer than half").
    ten = b"\n- dirname:".join(GOOD.split(b"\n- dirname:")[:10])
    assert (await rig.poll(ten)).ok and [rows for rows, _ in rig.history()] == [20, 20, 10]


async def test_a_network_or_server_failure_is_not_a_drift_and_does_not_end_one(rig: Rig) -> None:
    assert (await rig.poll(GOOD)).ok
    failed = await rig.poll(503)
    assert not failed.ok and not failed.drifted and failed.ops_queued == 0
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "failing" and not st.is_drifted
    assert rig.outbox() == []

    assert (await rig.poll(DRIFTS["renamed column"][0])).drifted
    for _ in range(3):  # the server fails meanwhile: still drifted, nothing more told
        assert not (await rig.poll(503)).ok
    st = status.status_of(rig.db, "aider")
    assert st is not None and st.status == "drifted" and "pass_rate_2" in (st.drift or "")
    assert len(rig.outbox()) == 2
    assert (await rig.poll(good(36.0))).ok and len(rig.outbox()) == 4


async def test_without_ops_channels_a_drift_is_logged_once_per_change_and_shown(
        fresh_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(fresh_db, Clock(T0), ops=())
    try:
        caplog.set_level(logging.INFO)
        assert (await rig.poll(GOOD)).ok
        for _ in range(3):
            assert (await rig.poll(DRIFTS["renamed column"][0])).drifted

        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].startswith("source aider drifted: aider: run 1 (")
        assert "no [ops] channel configured" in warnings[0]
        assert rig.outbox() == [] and rig.db.table("events").count == 0

        # Shown in `boards`, /healthz (named, still 200) and /metrics.
        reply = await rig.ask("boards")
        assert [(b, n) for b, _, n in reply.table] == [("board", "models"),
                                                       ("aider/polyglot (drifted)", "20")]
        assert reply.text.startswith("aider drifted since 2026-03-02: run 1 (")
        assert f"({POLYGLOT_URL}). Its last good tables are kept; every poll retries." in reply.text
        ok, body = health(rig.db, rig.clock.now, Freshness.of({"aider": 6 * 3600}, 3.0, T0))
        assert ok and body["problems"] == []
        assert list(body["drifted"]) == ["aider"] and POLYGLOT_URL in body["drifted"]["aider"]
        assert body["sources"]["aider"]["status"] == "drifted"
        assert "pass_rate_2" in body["sources"]["aider"]["drift"]
        metrics = rig.metrics.exposition().decode()
        assert 'leaderwatch_source_drifted{source="aider"} 1.0' in metrics

        caplog.clear()
        assert (await rig.poll(good(36.0))).ok
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].startswith("source aider recovered: aider reads fine again")
        assert 'leaderwatch_source_drifted{source="aider"} 0.0' in rig.metrics.exposition().decode()
        reply = await rig.ask("boards")
        assert reply.text == "" and [b for b, _, _ in reply.table] == ["board", "aider/polyglot"]
    finally:
        await rig.http.aclose()


def test_an_ops_reply_says_what_changed_where_and_what_happens_now() -> None:
    event = drift.drift_event("lmarena", "lmarena/text: text CSV is missing required columns: rating "
                              "(it has: model, score)", "https://example.org/t.csv", T0)
    reply = drift.ops_reply(event)
    assert reply.title == "Source drifted: lmarena" and reply.url is None  # the Origin line says it
    assert reply.text.split("\n")[:2] == [
        "lmarena: lmarena/text: text CSV is missing required columns: rating (it has: model, score)",
        "Origin: https://example.org/t.csv"]
    assert "retries at every poll" in reply.text
    back = drift.ops_reply(drift.recovery_event("lmarena", "x", T0, T0.replace(hour=12)))
    assert back.title == "Source recovered: lmarena" and back.url is None
    assert back.text == ("lmarena reads fine again (drifted since 2026-03-02: x). Polling and alerts go on "
                         "as before.")


# --- settings and wiring ------------------------------------------------------------------------------

def settings_from(tmp_path: Path, toml: str) -> Settings:
    (tmp_path / "leaderwatch.toml").write_text(toml, encoding="utf-8")
    return load_settings({}, cwd=tmp_path)


def test_the_ops_section(tmp_path: Path) -> None:
    s = settings_from(tmp_path, '[ops]\nslack_channel = "C0123ABCDEF"\n'
                                'discord_channel = 123456789012345678\n')
    assert (s.ops_slack_channel, s.ops_discord_channel) == ("C0123ABCDEF", "123456789012345678")
    s = settings_from(tmp_path, "")
    assert (s.ops_slack_channel, s.ops_discord_channel) == (None, None)


@pytest.mark.parametrize(("toml", "message"), [
    ('[ops]\nchannel = "C1"', "config [ops]: unknown key 'channel'; allowed: slack_channel, discord_channel"),
    ("[ops]\nslack_channel = 5", "config [ops] slack_channel: expected a Slack channel id such as "
                                 '"C0123ABCDEF" (channel details > About, at the bottom), got 5'),
    ('[ops]\ndiscord_channel = "#ops"', "config [ops] discord_channel: expected a Discord channel id "
                                        "(digits; Developer Mode on, right-click the channel > Copy Channel "
                                        "ID), got '#ops'"),
    ('ops = "C1"', 'config [ops]: expected a table with slack_channel = "C0123ABCDEF" and/or '
                   'discord_channel'),
])
def test_a_wrong_ops_section_names_the_setting(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, toml)
    assert str(info.value).startswith(message)


def test_ops_channels_of_platforms_without_a_token_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    both: Callable[..., Settings] = lambda **kw: Settings(  # noqa: E731
        ops_slack_channel="C0OPS", ops_discord_channel="42", **kw)
    assert ops_channels(both(slack_bot_token="xoxb-1", discord_token="t")) == [
        OpsChannel("slack", "C0OPS"), OpsChannel("discord", "42")]
    assert ops_channels(both(discord_token="t")) == [OpsChannel("discord", "42")]
    assert "[ops] slack_channel is set but SLACK_BOT_TOKEN is not" in caplog.text
    assert ops_channels(Settings(slack_bot_token="xoxb-1")) == []



async def test_the_scheduled_poll_wakes_the_dispatcher_for_an_ops_message(tmp_path: Path) -> None:
    """`bot/app.py` wiring: `[ops]` reaches the Poller, and a poll that queued an operators' message
    (nothing stored) wakes the dispatcher as a stored change does."""
    site = AiderSite(GOOD)
    settings = Settings(db_path=str(tmp_path / "lw.db"), ops_slack_channel="C0OPS", slack_bot_token="xoxb-1")
    client = httpx.AsyncClient(transport=httpx.MockTransport(site))
    app = build_app(settings, client=client, sources=[AiderSource(Identity.load())], clock=Clock(T0))
    app.fetcher.sleep = no_sleep
    scheduler = AsyncIOScheduler(timezone=UTC)
    woken: list[int] = []
    try:
        assert app.poller.ops == (OpsChannel("slack", "C0OPS"),)
        schedule(app, scheduler, lambda: woken.append(1))
        [job] = [j for j in scheduler.get_jobs() if j.id == "aider"]
        poll = job.func  # the job's coroutine function, run by hand here
        scheduler.start(paused=True)  # the job's reschedule after a failure needs a started scheduler
        await poll(*job.args)
        assert woken == [1]  # the first table: a stored change
        site.polyglot = DRIFTS["HTML error page"][0]
        await poll(*job.args)
        assert woken == [1, 1] and [r["channel_id"] for r in app.db.table("outbox").rows] == ["C0OPS"]
        await poll(*job.args)
        assert woken == [1, 1]  # still drifted: nothing queued, nothing to wake for
    finally:
        scheduler.shutdown(wait=False)
        await app.aclose()
