"""Delivery at the platforms' pace: nothing that waits (a channel's turn, a platform's bucket, a 429, a slow
channel) holds a delivery slot or hides the rows behind it; the rates are settings; /metrics shows the
delivery rate and the queue's age; the fakes can enforce Slack's and Discord's limits."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.models import Event
from leaderwatch.bot.app import delivery_pacing
from leaderwatch.bot.chat.slack import SlackSender, web_client
from leaderwatch.bot.pipeline.delivery import Dispatcher, Pacing, Rate
from leaderwatch.bot.runtime.metrics import Metrics
from leaderwatch.bot.settings import DELIVERY_DEFAULTS, ConfigError, Settings, load_settings
from leaderwatch.storage import outbox
from leaderwatch.storage.subscriptions import add_subscription
from tests.bot.fake_discord import TOKEN, FakeDiscord, keep_endpoints
from tests.bot.fake_slack import BOT_TOKEN, FakeSlack
from tests.bot.test_delivery import RULE, T0, URLS, FakeSender, Platform, overtake, queue, subscribe
from tests.bot.test_discord import started
from tests.helpers import Clock, build_context, wait_until


class Monotonic:
    """The dispatcher's monotonic clock, moved by hand or by its `sleep`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class PacedSender(FakeSender):
    """A FakeSender that names its calls (so they can be paced) and notes the monotonic time of each send."""

    def __init__(self, platform: Platform, clock: Clock, mono: Monotonic | None = None, **kwargs) -> None:
        super().__init__(platform, clock, **kwargs)
        self.mono = mono
        self.calls = {"post": ("chat.postMessage",), "reply": ("chat.postMessage",), "edit": ("chat.update",),
                      "image": ("files.upload",), "check": ("conversations.history",)}
        self.sent_at: list[tuple[float, str]] = []

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        if self.mono is not None:
            self.sent_at.append((self.mono(), channel_id))
        return await super().send(channel_id, reply, delivery_key, thread)


def many_channels(db, n: int, first: int = 0, pattern: str = "lmarena/*") -> list[str]:
    channels = [f"C{i:05d}" for i in range(first, first + n)]
    with db.atomic():
        for channel in channels:
            add_subscription(db, "slack", channel, pattern, RULE, "U0ADMIN", T0)
    return channels


@pytest.fixture
def db(fresh_db):
    return fresh_db


# --- nothing hides healthy rows ---------------------------------------------------------------------

@pytest.mark.parametrize("paced", [False, True])
async def test_rows_waiting_on_a_429_never_hide_the_healthy_rows_behind_them(db, paced: bool) -> None:
    waiting = many_channels(db, 1000)
    queue(db, [overtake(0)], T0)  # one alert for each of 1,000 channels ...
    outbox.mark_retry_all(db, range(1, 1001), T0 + timedelta(minutes=10), "429 ratelimited")
    healthy = many_channels(db, 20, first=1000)
    queue(db, [overtake(1, minutes=1)], T0)  # ... waiting out a 429 before 20 healthy channels' alerts
    platform, clock = Platform(), Clock(T0)
    sender = PacedSender(platform, clock)
    pacing = {"slack": Pacing({"chat.postMessage": Rate(1000.0, 50.0)}, 1.0)} if paced else None
    d = Dispatcher(db, {"slack": sender}, clock, board_urls=URLS, jitter=lambda: 0.0, pacing=pacing)
    assert await d.run_once() == 20
    assert sorted(c for _, c, _ in sender.attempts) == healthy
    assert outbox.depth(db) == {"pending": 1000 + 1000, "delivered": 20}  # the 1,000 also got alert 2
    assert waiting[0] not in platform.channels


# --- pacing never holds a slot ----------------------------------------------------------------------

async def test_a_channel_waiting_its_turn_is_skipped_not_slept_on(db) -> None:
    subscribe(db, "C1", "lmarena/text")
    for channel in ("C2", "C3", "C4"):
        subscribe(db, channel, "lmarena/vision")
    texts = [overtake(n, minutes=n) for n in range(3)]
    queue(db, texts, T0)
    queue(db, [overtake(3, "lmarena/vision", minutes=3)], T0)
    platform, clock, mono = Platform(), Clock(T0), Monotonic()
    sender = PacedSender(platform, clock, mono)
    d = Dispatcher(db, {"slack": sender}, clock, mono.sleep, URLS, jitter=lambda: 0.0, concurrency=1,
                   pacing={"slack": Pacing(channel_interval=10.0)}, monotonic=mono)
    # One slot: C1's second alert must wait 10 s for its turn; C2-C4 go meanwhile, nothing sleeps 10 s.
    assert await d.run_once() == 4
    assert [c for _, c in sender.sent_at] == ["C1", "C2", "C3", "C4"]
    assert mono.slept == [] and d.next_try == pytest.approx(10.0)
    mono.now += 8.5
    assert await d.run_once() == 0 and d.next_try == pytest.approx(1.5)
    mono.now += 1.5
    assert await d.run_once() == 1
    mono.now += 9.5  # a turn due within a second is waited for in the round (not slept through by a slot)
    assert await d.run_once() == 1 and mono.slept == [pytest.approx(0.5)]
    assert [k for k, _ in platform.channels["C1"]] == [outbox.item(db, i).delivery_key for i in (1, 2, 3)]


async def test_a_platform_bucket_paces_its_sends(db) -> None:
    channels = many_channels(db, 6)
    queue(db, [overtake(0)], T0)
    platform, clock, mono = Platform(), Clock(T0), Monotonic()
    sender = PacedSender(platform, clock, mono)
    d = Dispatcher(db, {"slack": sender}, clock, mono.sleep, URLS, jitter=lambda: 0.0, monotonic=mono,
                   pacing={"slack": Pacing({"chat.postMessage": Rate(2.0, 1.0)})})
    assert await d.run_once() == 6  # a wait of 0.5 s for the bucket is waited within the round
    times = [t for t, _ in sender.sent_at]
    assert [c for _, c in sender.sent_at] == channels
    assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == [0.5] * 5


async def test_each_slack_workspace_is_paced_on_its_own(db) -> None:
    """Slack counts its rate limits per workspace: two workspaces of a public app send side by side, each
    at the whole rate, and one whose budget is spent holds up only its own channels."""
    channels = many_channels(db, 6)
    queue(db, [overtake(0)], T0)
    platform, clock, mono = Platform(), Clock(T0), Monotonic()
    workspace = {c: ("T1" if i % 3 else "T2") for i, c in enumerate(channels)}  # T1: 4 channels, T2: 2

    class Workspaces(PacedSender):
        def pace_scope(self, channel_id: str) -> str:
            return workspace[channel_id]

    sender = Workspaces(platform, clock, mono)
    d = Dispatcher(db, {"slack": sender}, clock, mono.sleep, URLS, jitter=lambda: 0.0, monotonic=mono,
                   pacing={"slack": Pacing({"chat.postMessage": Rate(2.0, 1.0)})})
    assert await d.run_once() == 6
    start = sender.sent_at[0][0]
    by_workspace = {w: [round(t - start, 3) for t, c in sender.sent_at if workspace[c] == w]
                    for w in ("T1", "T2")}
    assert by_workspace == {"T1": [0.0, 0.5, 1.0, 1.5], "T2": [0.0, 0.5]}  # one rate would take 2.5 s


async def test_messages_slow_to_prepare_do_not_go_out_in_one_burst(db) -> None:
    """Four channels admitted 50 ms apart whose alerts take 0.7 s to prepare (the first chart drawn):
    the calls taken at admission are stale by then, so each send takes the budget afresh, or waits."""
    channels = many_channels(db, 4)
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)
    sender = PacedSender(platform, clock, Monotonic())
    sender.mono = time.monotonic  # type: ignore[assignment]

    drawn = asyncio.Event()
    asyncio.get_running_loop().call_later(0.7, drawn.set)

    async def slow_chart(platform_: str, channel_id: str, event: Event, reply: Reply) -> Reply:
        await drawn.wait()  # one chart for all four: they are ready at the same moment
        return reply

    d = Dispatcher(db, {"slack": sender}, clock, board_urls=URLS, jitter=lambda: 0.0, decorate=slow_chart,
                   pacing={"slack": Pacing({"chat.postMessage": Rate(20.0, 1.0)})})
    assert await d.run_once() == 4
    times = [t for t, _ in sender.sent_at]
    assert sorted(c for _, c in sender.sent_at) == channels
    assert all(b - a >= 0.045 for a, b in zip(times, times[1:], strict=False)), times


async def test_a_slow_channel_cannot_take_every_slot(db) -> None:
    slow = many_channels(db, 4, pattern="lmarena/text")
    queue(db, [overtake(0)], T0)
    subscribe(db, "C0HEALTHY", "lmarena/vision")
    queue(db, [overtake(1, "lmarena/vision", minutes=1)], T0)
    release = asyncio.Event()
    platform, clock = Platform(), Clock(T0)

    class Slow(PacedSender):
        async def send(self, channel_id: str, reply: Reply, delivery_key: str,
                       thread: str | None = None) -> str:
            if channel_id in slow:
                await release.wait()
            return await super().send(channel_id, reply, delivery_key, thread)

    sender = Slow(platform, clock)
    d = Dispatcher(db, {"slack": sender}, clock, board_urls=URLS, concurrency=2, slow_after=0.05)
    task = asyncio.create_task(d.run_once())
    await wait_until(lambda: "C0HEALTHY" in platform.channels, message="the healthy channel's alert",
                     running=task)
    assert not any(c in platform.channels for c in slow)  # all four still answering slowly
    release.set()
    assert await asyncio.wait_for(task, 5) == 5


async def test_a_send_that_never_answers_is_cut_off_then_checked_before_resending(db) -> None:
    subscribe(db, "C1")
    queue(db, [overtake(0)], T0)
    platform, clock = Platform(), Clock(T0)

    class Hangs(PacedSender):
        hang = True

        async def send(self, channel_id: str, reply: Reply, delivery_key: str,
                       thread: str | None = None) -> str:
            if self.hang:
                self.hang = False
                await asyncio.Event().wait()
            return await super().send(channel_id, reply, delivery_key, thread)

    sender = Hangs(platform, clock)
    d = Dispatcher(db, {"slack": sender}, clock, board_urls=URLS, jitter=lambda: 0.0, send_timeout=0.05)
    assert await d.run_once() == 0
    row = outbox.item(db, 1)
    assert (row.status, row.last_error) == ("pending", "no answer from slack in 0.05 s")
    clock.advance(5)
    assert await d.run_once() == 1
    assert len(sender.checks) == 1  # it may have landed: looked for before sending again
    assert len(platform.messages("C1")) == 1


# --- charts never hold an alert back ----------------------------------------------------------------

async def test_alerts_go_without_their_chart_when_the_upload_rate_is_spent(db) -> None:
    many_channels(db, 3)
    queue(db, [overtake(0)], T0)
    platform, clock, mono = Platform(), Clock(T0), Monotonic()
    metrics = Metrics(platforms=("slack",))

    async def chart(platform_: str, channel_id: str, event: Event, reply: Reply) -> Reply:
        return Reply(text=reply.text, title=reply.title, image=b"\x89PNG chart")

    d = Dispatcher(db, {"slack": PacedSender(platform, clock, mono)}, clock, mono.sleep, URLS,
                   jitter=lambda: 0.0, decorate=chart, metrics=metrics, monotonic=mono,
                   pacing={"slack": Pacing({"files.upload": Rate(1 / 60, 1.0)})})
    assert await d.run_once() == 3
    images = [r.image for c in sorted(platform.channels) for r in platform.messages(c)]
    assert images == [b"\x89PNG chart", None, None]
    assert metrics.charts_skipped.labels("slack")._value.get() == 2


# --- metrics ---------------------------------------------------------------------------------------

def samples(metrics: Metrics, name: str) -> dict[str, float]:
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    return {s.labels.get("platform", ""): s.value for s in families[name].samples} if name in families else {}


async def test_metrics_show_the_delivery_rate_and_the_age_of_the_oldest_waiting_alert(db) -> None:
    many_channels(db, 3)
    queue(db, [overtake(0)], T0)
    clock = Clock(T0 + timedelta(seconds=90))
    metrics = Metrics(platforms=("slack",))
    metrics.watch_storage(db, clock)
    assert samples(metrics, "leaderwatch_outbox_oldest_age_seconds") == {"slack": 90.0}
    assert samples(metrics, "leaderwatch_delivery_rate") == {"slack": 0.0}
    d = Dispatcher(db, {"slack": FakeSender(Platform(), clock)}, clock, board_urls=URLS, metrics=metrics)
    assert await d.run_once() == 3
    assert samples(metrics, "leaderwatch_delivery_rate") == {"slack": pytest.approx(3 / 60)}
    assert samples(metrics, "leaderwatch_outbox_oldest_age_seconds") == {}


# --- settings ----------------------------------------------------------------------------------------

def test_the_rates_are_settings_with_the_platforms_limits_as_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.delivery == DELIVERY_DEFAULTS
    pacing = delivery_pacing(settings)
    assert pacing["discord"].rates["request"] == Rate(50.0, 10.0)
    assert pacing["slack"].rates["chat.postMessage"].per_second == 5.0
    assert pacing["slack"].rates["files.getUploadURLExternal"].per_second == pytest.approx(100 / 60)
    assert pacing["slack"].channel_interval == 1.0
    (tmp_path / "leaderwatch.toml").write_text("[delivery]\nslots = 16\ndiscord_requests_per_second = 25\n")
    settings = load_settings({}, cwd=tmp_path)
    assert settings.delivery["slots"] == 16
    assert delivery_pacing(settings)["discord"].rates["request"].per_second == 25


@pytest.mark.parametrize(("line", "message"), [
    ("slots = 0", "config [delivery] slots: expected a whole number from 1 to 256, got 0 (default 8)"),
    ("slots = 2.5", "config [delivery] slots: expected a whole number from 1 to 256, got 2.5 (default 8)"),
    ('discord_requests_per_second = "fast"',
     "config [delivery] discord_requests_per_second: expected a positive number, got 'fast' (default 50)"),
    ("channel_interval = -1",
     "config [delivery] channel_interval: expected a number of seconds, 0 or more, got -1 (default 1)"),
    ("slack_messages_per_hour = 3", "config [delivery]: unknown key 'slack_messages_per_hour'; allowed: "
     "slots, send_timeout, channel_interval, discord_requests_per_second, slack_messages_per_minute, "
     "slack_uploads_per_minute, slack_updates_per_minute, slack_history_per_minute"),
])
def test_a_bad_delivery_setting_is_named(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "leaderwatch.toml").write_text(f"[delivery]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, cwd=tmp_path)
    assert str(caught.value) == message


# --- the fakes' rate limits ----------------------------------------------------------------------------

async def test_the_discord_fake_enforces_a_global_rate() -> None:
    fake = await FakeDiscord(global_rate=2.0).start()
    try:
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with httpx.AsyncClient(base_url=fake.api_url, headers=headers) as http:
            answers = [await http.get("/users/@me") for _ in range(3)]
    finally:
        await fake.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    body = answers[2].json()
    assert body["global"] is True and 0 < body["retry_after"] <= 0.5
    assert answers[2].headers["X-RateLimit-Global"] == "true" and answers[2].headers["Via"]
    assert len(fake.rate_limited) == 1
    assert FakeDiscord().global_rate is None  # off by default


async def test_the_slack_fake_enforces_a_rate_per_channel_and_per_method() -> None:
    fake = await FakeSlack(channel_rate=1.0, channel_burst=1.0, method_limits={"chat.update": 60.0}).start()
    try:
        async with httpx.AsyncClient(base_url=fake.api_url,
                                     headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as http:
            posts = [await http.post("chat.postMessage", json={"channel": c, "text": "x"})
                     for c in ("C1", "C1", "C2")]
            updates = [await http.post("chat.update", json={"channel": "C1", "ts": "1.000001", "text": "y"})
                       for _ in range(2)]
    finally:
        await fake.stop()
    assert [p.status_code for p in posts] == [200, 429, 200]
    assert posts[1].headers["Retry-After"] == "1" and posts[1].json() == {"ok": False, "error": "ratelimited"}
    assert [u.status_code for u in updates] == [200, 429]
    assert [(c.method, c.params["channel"]) for c in fake.rate_limited] == [
        ("chat.postMessage", "C1"), ("chat.update", "C1")]
    assert FakeSlack().channel_rate is None and FakeSlack().method_limits == {}


def test_the_shipped_settings_keep_to_the_fakes_limits() -> None:
    """The defaults a bench runs against the fakes: Discord's bucket refills at 50 a second in bursts
    well under the fake's one-second burst; Slack posts at 300 a minute in single calls."""
    pacing = delivery_pacing(Settings())
    assert pacing["discord"].rates["request"].burst < 50
    assert pacing["slack"].rates["chat.postMessage"] == Rate(5.0, 1.0)


# --- the real senders, paced as shipped, against the fakes enforcing the platforms' limits ----------------

async def test_the_discord_sender_paced_at_the_global_rate_meets_no_429(db, monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:
    fake = await FakeDiscord().start()
    keep_endpoints(monkeypatch)
    service = await started(fake, build_context(db, lambda: T0))
    try:
        fake.global_rate = 20.0  # on once the bot has started
        channels = [str(980_000_000_000_000_000 + i) for i in range(30)]
        for channel in channels:
            subscribe(db, channel, platform="discord")
        queue(db, [overtake(0)], T0)
        settings = Settings(delivery={**DELIVERY_DEFAULTS, "discord_requests_per_second": 20.0})
        d = Dispatcher(db, {"discord": service.sender}, Clock(T0), board_urls=URLS,
                       concurrency=int(settings.delivery["slots"]), pacing=delivery_pacing(settings))
        assert await d.run_once() == 30  # the bucket's short waits are waited within the round
    finally:
        await service.stop()
        await fake.stop()
    assert fake.rate_limited == []
    assert sorted(r.path.split("/")[1] for r in fake.requests if r.method == "POST" and
                  r.path.endswith("/messages")) == channels


async def test_the_slack_sender_paced_per_channel_meets_no_429(db) -> None:
    # A burst of 1.2: the fake measures arrival times, which a loaded machine shifts by up to a few hundred
    # ms between two sends the dispatcher spaced by 1 s; unpaced, the three would still meet 429s.
    fake = await FakeSlack(channel_rate=1.0, channel_burst=1.2,
                           method_limits={"chat.postMessage": 300.0}).start()
    try:
        subscribe(db, "C1")
        queue(db, [overtake(n, minutes=n) for n in range(3)], T0)
        sender = SlackSender(web_client(Settings(slack_bot_token=BOT_TOKEN, slack_api_url=fake.api_url),
                                        retry_rate_limits=False))
        d = Dispatcher(db, {"slack": sender}, Clock(T0), board_urls=URLS, pacing=delivery_pacing(Settings()))
        start = time.monotonic()
        assert await d.run_once() == 3  # a turn due within a second is waited for within the round
        assert time.monotonic() - start >= 2.0
    finally:
        await fake.stop()
    assert fake.rate_limited == []
    assert [p.metadata["event_payload"]["delivery_key"] for p in fake.posts("C1")] == [
        outbox.item(db, i).delivery_key for i in (1, 2, 3)]
