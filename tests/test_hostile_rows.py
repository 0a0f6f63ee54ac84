"""Hostile and odd rows (issue 14 item 5): from every parser, through storage and the rules, to both chat
renderers and the charts.

A model's name is whatever an origin publishes: markdown, masked links, mentions, NUL, right-to-left
overrides, 10,000 characters. Each source's real format carries one here (its recorded excerpts with
one name swapped, or a small table typed in that format), with a score that cannot be stored in
another row. The name must arrive as published, be stored and read back, reach the rules, and come out
of Slack's Block Kit and Discord's embeds (through the loopback fakes) cleaned for each platform, one
alert still one message; the charts draw it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlite_utils import Database

from leaderwatch.alerts.formatting import NAME_LIMIT, Reply, event_reply
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.ruleset import default_rules
from leaderwatch.bot.charts import board_chart, model_chart, render
from leaderwatch.bot.chat.discord_bot import DiscordService, to_messages
from leaderwatch.bot.chat.slack import SlackSender, to_blocks, web_client
from leaderwatch.bot.commands import Invocation, dispatch
from leaderwatch.bot.pipeline.alerter import Alerter
from leaderwatch.bot.pipeline.poller import Poller
from leaderwatch.bot.pipeline.store import Stored
from leaderwatch.bot.settings import Settings
from leaderwatch.sources.aider import EDIT
from leaderwatch.sources.aider import parse_leaderboard as parse_aider
from leaderwatch.sources.base import Board, Entry, Snapshot, make_snapshot
from leaderwatch.sources.epoch import parse_benchmark_csv
from leaderwatch.sources.http import Fetcher
from leaderwatch.sources.identity import Identity, default_groups
from leaderwatch.sources.livebench import parse_livebench
from leaderwatch.sources.lmarena import (
    ARENAS_BY_CONFIG,
    TEXT,
    dataset_snapshot,
    parse_daily_scrape,
    parse_fboulnois_csv,
    read_dataset_parquet,
)
from leaderwatch.sources.openllm import parse_csv as parse_openllm
from leaderwatch.sources.openvlm import parse_openvlm
from leaderwatch.sources.swebench import parse_leaderboards as parse_swebench
from leaderwatch.storage import snapshots as store
from leaderwatch.storage.db import open_db
from tests.bot.fake_discord import CHANNEL_ID, FakeDiscord, embed_problems, keep_endpoints, settings_for
from tests.bot.fake_slack import BOT_TOKEN, FakeSlack
from tests.bot.test_slack import texts
from tests.helpers import build_context

DATA = Path(__file__).resolve().parent / "data"
AT = datetime(2025, 1, 24, tzinfo=UTC)

HOSTILE = ("**Evil** [link](https://evil.example) <!channel> <@&123> ||sp|| `t` _it_ ~~x~~\x00 "
           "\u202egnp.exe\u202c \u2066i\u2069\u200f")
"""Markdown, a masked link, mentions, NUL and bidi controls in one model name (under NAME_LIMIT)."""
LONG = "Long " * 2000
"""A 10,000-character name (issue 14: it turned one alert into 5 Discord messages)."""
UNSHOWABLE = ("\x00", "\u202e", "\u202c", "\u2066", "\u2069", "\u200f")


def csv_cell(text: str) -> bytes:
    return ('"' + text.replace('"', '""') + '"').encode()


def json_text(text: str) -> bytes:
    """`text` as it sits between the quotes of a JSON (or YAML double-quoted) string."""
    return json.dumps(text)[1:-1].encode()


def dropped_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "that cannot be stored" in r.getMessage()]


def names(snap: Snapshot) -> list[str]:
    return [e.name for e in snap.entries]


def as_stored(name: str) -> str:
    """`name` as leaderwatch keeps and judges it: without NUL characters (PostgreSQL's text cannot hold
    one, and the rules see what is stored: `sources.base.without_nul`), on both stores."""
    return name.replace("\x00", "")


def round_trip(db: Database, snap: Snapshot) -> Snapshot:
    """The snapshot stored in a fresh database and read back."""
    store.save_snapshot(db, snap)
    back = store.latest_snapshot(db, snap.board.id)
    assert back is not None
    return back


# -- every parser ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One source's real format with a hostile name in one row and a broken score in another."""

    parse: Callable[[Identity], list[Snapshot]]
    board: str
    dropped: str
    """The name of the row whose score cannot be stored."""


def aider(identity: Identity) -> list[Snapshot]:
    raw = (DATA / "aider" / "edit_leaderboard" / "edit_leaderboard_2024-05-06.yml").read_bytes()
    raw = raw.replace(b"model: claude-3-sonnet-20240229", b'model: "' + json_text(HOSTILE) + b'"', 1)
    raw = raw.replace(b"pass_rate_2: 68.4", b"pass_rate_2: -68.4", 1)  # claude-3-opus-20240229's run
    return parse_aider(raw, board=EDIT, identity=identity, url="test://aider", as_of=AT, fetched_at=AT)


def swebench(identity: Identity) -> list[Snapshot]:
    raw = (DATA / "swebench" / "data_2024-04-16.json").read_bytes()
    raw = raw.replace(b'"17.00"', b'"n/a"', 1)  # SWE-agent + GPT 4 on lite
    raw = raw.replace(b'"name": "RAG + Claude 3 Opus"', b'"name": "' + json_text(HOSTILE) + b'"')
    return parse_swebench(raw, identity=identity, url="test://swebench", as_of=AT, fetched_at=AT)


def openllm(identity: Identity) -> list[Snapshot]:
    raw = (DATA / "openllm" / "open_llm_leaderboard" / "v2" / "huggingface_v2_2024-07-13.csv").read_bytes()
    raw = raw.replace(b"Qwen/Qwen2-72B-Instruct,42.49,", b"Qwen/Qwen2-72B-Instruct,NaN,", 1)
    # The `fullname` column (the repository id) names the entry.
    raw = raw.replace(b",TRUE,meta-llama/Meta-Llama-3-70B-Instruct,https:",
                      b",TRUE," + csv_cell(HOSTILE) + b",https:", 1)
    return parse_openllm(raw, identity=identity, url="test://openllm", as_of=AT, fetched_at=AT)


def openvlm(identity: Identity) -> list[Snapshot]:
    data = json.loads((DATA / "openvlm" / "OpenVLM_2025-09-17.json").read_bytes())
    data["results"]["GLM-4v-9B"]["META"]["Method"][0] = HOSTILE
    data["results"]["Qwen2-VL-72B"]["MMStar"]["Overall"] = "Infinity"
    return parse_openvlm(json.dumps(data).encode(), identity=identity, url="test://openvlm", fetched_at=AT)


def epoch(identity: Identity) -> list[Snapshot]:
    raw = (b"Model version,mean_score,Release date\n" + csv_cell(HOSTILE) + b",0.5,2026-01-01\n"
           b"honest-model,0.4,2026-01-01\nnegative-model,-0.3,2026-01-01\n")
    return [parse_benchmark_csv(raw, slug="gpqa_diamond", identity=identity, url="test://epoch", as_of=AT,
                                fetched_at=AT)]


def livebench(identity: Identity) -> list[Snapshot]:
    folder = DATA / "livebench"
    table = (folder / "table_2024_11_25" / "table_2024_11_25__as_of_2025-03-31.csv").read_bytes()
    table = table.replace(b"\namazon.nova-micro-v1:0,48.0,", b"\namazon.nova-micro-v1:0,inf,", 1)
    table = table.replace(b"\namazon.nova-lite-v1:0,", b"\n" + csv_cell(HOSTILE) + b",", 1)
    cats = (folder / "categories_2024_11_25" / "categories_2024_11_25__as_of_2024-11-25.json").read_bytes()
    return parse_livebench(table, cats, identity=identity, url="test://livebench", categories_url="c.json",
                           as_of=AT, fetched_at=AT, release="2024_11_25")


def lmarena_csv(identity: Identity) -> list[Snapshot]:
    raw = (DATA / "recordings" / "lmarena" / "fboulnois_lmsys_csv" / "lmsys_2025-01-24.csv").read_bytes()
    raw = raw.replace(b",DeepSeek-R1,1357,", b",DeepSeek-R1,-1357,", 1)
    raw = raw.replace(b",Gemini-Exp-1121,", b"," + csv_cell(HOSTILE) + b",", 1)
    return parse_fboulnois_csv(raw, identity=identity, board=TEXT, url="test://lmsys", as_of=AT,
                               fetched_at=AT)


def lmarena_scrape(identity: Identity) -> list[Snapshot]:
    data = json.loads((DATA / "recordings" / "lmarena" / "arena_ai_daily_scrape" / "2026-04-10" / "text.json")
                      .read_bytes())
    data["models"][1]["model"] = HOSTILE
    data["models"][2]["score"] = "NaN"
    return parse_daily_scrape(json.dumps(data).encode(), identity=identity, url="test://scrape")


def lmarena_dataset(identity: Identity, tmp: Path) -> list[Snapshot]:
    ratings = [1400.0, 1390.0, float("nan"), float("inf"), -5.0, 1300.0]
    models = ["top", HOSTILE, "nan-model", "inf-model", "negative-model", "last"]
    n = len(models)
    path = tmp / "text.parquet"
    pq.write_table(pa.table({
        "model_name": models, "organization": ["o"] * n, "license": ["MIT"] * n, "rating": ratings,
        "rating_lower": [r - 5 for r in ratings], "rating_upper": [r + 5 for r in ratings],
        "vote_count": [1000.0] * n, "category": ["overall"] * n,
        "leaderboard_publish_date": ["2026-01-05"] * n,
    }), path)
    arena = ARENAS_BY_CONFIG["text"]
    rows = read_dataset_parquet(path, arena, "test://dataset")
    return [dataset_snapshot(rows["2026-01-05"], identity=identity, arena=arena, day="2026-01-05",
                             url="test://dataset", fetched_at=AT)]


CASES = {
    "aider": Case(aider, "aider/edit", "claude-3-opus-20240229"),
    "swebench": Case(swebench, "swebench/lite", "SWE-agent + GPT 4"),
    "openllm": Case(openllm, "openllm/v2", "Qwen/Qwen2-72B-Instruct"),
    "openvlm": Case(openvlm, "opencompass/mmstar", "Qwen2-VL-72B"),
    "epoch": Case(epoch, "epoch/gpqa_diamond", "negative-model"),
    "livebench": Case(livebench, "livebench/global", "amazon.nova-micro-v1:0"),
    "lmarena-csv": Case(lmarena_csv, "lmarena/text", "DeepSeek-R1"),
    "lmarena-scrape": Case(lmarena_scrape, "lmarena/text-style-control", "gemini-3.1-pro-preview"),
}


@pytest.mark.parametrize("source", sorted(CASES))
def test_every_parser_keeps_the_name_as_published_and_drops_the_broken_score(
        source: str, identity: Identity, caplog: pytest.LogCaptureFixture, any_db: Database) -> None:
    case = CASES[source]
    snaps = {s.board.id: s for s in case.parse(identity)}
    snap = snaps[case.board]
    hostile = [e for s in snaps.values() for e in s.entries
               if "**Evil** [link](" in e.name and "\u202e" in e.name]
    assert hostile, f"{source}: the hostile name did not arrive as published"
    assert case.dropped not in names(snap)
    assert len(snap.entries) >= 2
    # One line per snapshot that dropped rows, naming the board and the count.
    lines = dropped_lines(caplog)
    assert any(line.startswith(f"{case.board} as of ") and "dropped 1 of " in line for line in lines), lines
    back = round_trip(any_db, next(s for s in snaps.values() if hostile[0] in s.entries))
    # Bidi characters survive either store as published; NUL survives SQLite only (dropped on PostgreSQL).
    assert as_stored(hostile[0].name) in names(back)


def test_lmarena_dataset_drops_nan_infinite_and_negative_ratings(
        identity: Identity, tmp_path: Path, caplog: pytest.LogCaptureFixture, any_db: Database) -> None:
    [snap] = lmarena_dataset(identity, tmp_path)
    assert names(snap) == ["top", as_stored(HOSTILE.strip()), "last"]  # judged as stored: no NUL
    [line] = dropped_lines(caplog)
    assert line == ("lmarena/text as of 2026-01-05: dropped 3 of 6 row(s) that cannot be stored "
                    "(1 unreadable, 1 infinite, 1 negative): 'nan-model', 'inf-model', 'negative-model'")
    back = round_trip(any_db, snap)
    assert [e.score for e in back.entries] == [1400.0, 1390.0, 1300.0]  # no NULL score stored
    assert names(back) == ["top", as_stored(HOSTILE.strip()), "last"]


# -- a table that comes back under one publish date ---------------------------------------------------------

BOARD = Board("odd/board", "Odd board", "score", url="https://example.org/odd")


class Scripted:
    """A source whose next fetch returns the snapshots given (no HTTP)."""

    name = "odd"
    interval_seconds = 3600

    def __init__(self) -> None:
        self.next: list[Snapshot] = []

    def boards(self) -> list[Board]:
        return [BOARD]

    async def fetch(self, http: Fetcher) -> list[Snapshot]:
        return list(self.next)

    def recordings(self, root: Path) -> list[Any]:
        return []

    def load(self, recording: Any) -> list[Snapshot]:
        return []


def table(*rows: tuple[str, float, str], at: datetime = AT) -> Snapshot:
    ordered = sorted(rows, key=lambda r: -r[1])
    entries = [Entry(name=n, model_key=n.lower(), score=s, rank=i, organization=n.split("-")[0],
                     countries=(c,)) for i, (n, s, c) in enumerate(ordered, start=1)]
    return make_snapshot(BOARD, at, at, entries)


async def test_a_table_that_goes_back_under_the_same_date_is_stored_and_judged(any_db: Database) -> None:
    """A -> B -> A with one publish date: every poll succeeds and the rules compare A with B."""
    db = any_db
    now = [AT]
    groups = default_groups()
    events: list[Event] = []
    alerter = Alerter(db, default_rules(list(groups)), groups, lambda: now[0], events.append)
    changes: list[Stored] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    poller = Poller(db, Fetcher(client), lambda: now[0], changes.append)
    source = Scripted()
    a = table(("OpenAI-a", 90, "US"), ("DeepSeek-b", 80, "CN"), ("Mistral-c", 70, "FR"))
    b = table(("OpenAI-a", 80, "US"), ("DeepSeek-b", 90, "CN"), ("Mistral-c", 70, "FR"))
    results = []
    for day, snap in ((0, a), (8, b), (16, a), (17, a)):  # 8 days apart: past every rule's cooldown
        now[0] = AT + timedelta(days=day)
        source.next = [snap]
        before, seen = len(changes), len(events)
        results.append(await poller.poll(source))
        for stored in changes[before:]:
            alerter.on_change(stored)
        if day == 16:
            back = [(e.kind, e.model) for e in events[seen:]]
    await client.aclose()
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    assert [len(r.changed) for r in results] == [1, 1, 1, 0]  # the fourth poll: A again, unchanged
    second, third = results[1].changed[0].result, results[2].changed[0].result
    assert third.previous_id == second.snapshot_id  # the rules saw B before A
    assert ("new_leader", "OpenAI-a") in back and ("overtake", "OpenAI-a") in back
    latest = store.latest_snapshot(db, BOARD.id)
    assert latest is not None and names(latest) == ["OpenAI-a", "DeepSeek-b", "Mistral-c"]
    firsts = [names(s)[0] for s in store.snapshots_between(db, BOARD.id)]
    assert firsts == ["OpenAI-a", "DeepSeek-b", "OpenAI-a"]


# -- the rules, both renderers and the charts ---------------------------------------------------------------

def hostile_events(db: Database, name: str) -> list[Event]:
    """The events of a hostile-named Chinese model taking #1 (and overtaking the best western model)."""
    groups = default_groups()
    events: list[Event] = []
    alerter = Alerter(db, default_rules(list(groups)), groups, lambda: AT + timedelta(days=1), events.append)
    for day, rows in ((0, [(name, 80, "CN"), ("OpenAI-a", 90, "US")]),
                      (1, [(name, 95, "CN"), ("OpenAI-a", 90, "US")])):
        snap = table(*rows, at=AT + timedelta(days=day))
        result = store.save_snapshot(db, snap)
        if result.stored:
            alerter.on_change(Stored(snap, result))
    return events


@pytest.mark.parametrize("name", [HOSTILE, LONG], ids=["markup", "long"])
def test_the_rules_fire_on_hostile_names(name: str, any_db: Database) -> None:
    events = hostile_events(any_db, name.strip())
    assert sorted(e.kind for e in events) == ["new_leader", "overtake"]
    assert all(e.model == as_stored(name.strip()) and as_stored(name.strip()) in e.message for e in events)


def reply_for(event: Event) -> Reply:
    return event_reply(event, BOARD.url)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    keep_endpoints(monkeypatch)
    yield fake
    await fake.stop()


def discord_texts(message: dict[str, Any]) -> str:
    out: list[str] = [message.get("content") or ""]
    for e in message.get("embeds") or []:
        out += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        out += [f"{f['name']}\n{f['value']}" for f in e.get("fields") or []]
    return "\n".join(out)


async def test_slack_gets_hostile_names_cleaned_and_inert(slack: FakeSlack) -> None:
    # One store only: the in-memory databases just produce the events; the subject is Slack's rendering.
    events = hostile_events(open_db(":memory:"), HOSTILE.strip()) + hostile_events(open_db(":memory:"), LONG)
    settings = Settings(db_path=":memory:", slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    sender = SlackSender(web_client(settings, retry_rate_limits=False), min_interval=0)
    for i, event in enumerate(events):
        await sender.send("C0ALERTS", reply_for(event), f"key-{i}")
    calls = slack.called("chat.postMessage")
    assert len(calls) == len(events)  # one message each
    for call in calls:
        shown = texts(call.params["blocks"]) + call.params["text"]
        assert not any(c in shown for c in UNSHOWABLE)
        assert "<!channel>" not in shown and "<@&123>" not in shown  # escaped: &lt;!channel&gt;
        assert len(shown) < 3 * (NAME_LIMIT + 400)
    hostile = texts(calls[0].params["blocks"])
    assert "&lt;!channel&gt; &lt;@&amp;123&gt; ||sp|| `t` _it_ ~~x~~ gnp.exe i" in hostile


async def test_discord_gets_hostile_names_escaped_and_one_message_per_alert(discord: FakeDiscord) -> None:
    # One store only: the in-memory databases just produce the events; the subject is Discord's rendering.
    db = open_db(":memory:")
    events = hostile_events(db, HOSTILE.strip()) + hostile_events(open_db(":memory:"), LONG)
    service = DiscordService(settings_for(discord), build_context(db, lambda: AT), guild_ready_timeout=0.05,
                             reconnect=False, ready_timeout=5.0)
    assert await service.start()
    try:
        for i, event in enumerate(events):
            await service.sender.send(str(CHANNEL_ID), reply_for(event), f"key-{i}")
    finally:
        await service.stop()
    posts = discord.posts()
    assert len(posts) == len(events)  # a 10,000-character name no longer makes one alert 5 messages
    assert not [p for p in posts if embed_problems(p)]
    for post in posts:
        shown = discord_texts(post)
        assert not any(c in shown for c in UNSHOWABLE)
        assert "[link](" not in shown and "**Evil**" not in shown
    hostile = discord_texts(posts[0])
    assert ("\\*\\*Evil\\*\\* [link\\](https://evil.example) \\<!channel> \\<@&123> \\|\\|sp\\|\\| `t` "
            "\\_it\\_ \\~\\~x\\~\\~ gnp.exe i") in hostile
    assert "…" in discord_texts(posts[-1])  # the long name, cut


def test_the_plain_fallback_and_tables_are_cleaned_too() -> None:
    reply = Reply(title=HOSTILE, text=HOSTILE, table=(("model", "score"), (HOSTILE, "1")))
    for message in to_messages(reply):
        for embed in message:
            body = json.dumps(embed.to_dict(), ensure_ascii=False)
            assert not any(c in body for c in UNSHOWABLE)
    blocks = to_blocks(reply)
    assert not any(c in json.dumps(blocks, ensure_ascii=False) for c in UNSHOWABLE)
    assert "<!channel>" not in texts(blocks[1:])  # mrkdwn; the header is plain_text, never parsed


async def test_questions_and_charts_answer_about_hostile_names(caplog: pytest.LogCaptureFixture,
                                                               any_db: Database) -> None:
    db = any_db
    hostile_events(db, HOSTILE.strip())
    ctx = build_context(db, lambda: AT + timedelta(days=2))
    for text in (f"top {BOARD.id}", "model OpenAI-a", f"chart {BOARD.id}"):
        reply = await dispatch(ctx, Invocation("slack", "C1", "U1", "alice", text))
        assert not reply.error, (text, reply.text)
    chart = board_chart(db, BOARD.id, ctx.groups, AT, AT + timedelta(days=2))
    shown = as_stored(HOSTILE.strip())
    assert chart is not None and any(shown in (s.last() or ("", 0, ""))[2] for s in chart.series)
    assert render(chart).startswith(b"\x89PNG")
    by_name = model_chart(db, shown.lower(), LONG, [BOARD.id], AT, AT + timedelta(days=2))
    assert by_name is not None and len(by_name.title) < NAME_LIMIT + 60
    assert render(by_name).startswith(b"\x89PNG")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
