"""What a person's home in the chat app shows (Slack's App Home tab), built here so no adapter decides it.

For someone who manages channels: each channel of the platform that follows something, with its board
patterns and rules (a rule's name carries its thresholds), its mutes and its digest, and the last
alerts delivered there; for anyone else, a line saying who manages channels. For everyone, the race
for the default groups, answered by the `race` command itself. The adapter renders a `Home` (links,
channel mentions and block limits are the platform's business).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.kinds import title_of
from leaderwatch.bot.commands.configuration import describe_digest, describe_mutes
from leaderwatch.bot.commands.messages import WHO_MANAGES
from leaderwatch.bot.commands.registry import CommandContext, Invocation, dispatch
from leaderwatch.storage import outbox
from leaderwatch.storage.subscriptions import active_subscriptions, channel_settings

RECENT_ALERTS = 10
"""How many of the last delivered alerts the home lists."""

@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One channel that follows something: what it follows (board pattern and its rules), mutes, digest."""

    channel_id: str
    follows: tuple[tuple[str, tuple[str, ...]], ...]
    mutes: str
    digest: str


@dataclass(frozen=True, slots=True)
class SentAlert:
    """An alert delivered to a channel, to link to: the platform's id of its message (and for a thread
    reply, of the thread's first message)."""

    channel_id: str
    message_ref: str
    thread_ref: str | None
    title: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Home:
    """Everything one person's home shows, as of `at`. `manager`: whether they manage channels (then
    `channels` and `alerts` are theirs); otherwise `notice` says who does."""

    at: datetime
    manager: bool
    channels: tuple[ChannelSummary, ...]
    alerts: tuple[SentAlert, ...]
    race: Reply
    notice: str = ""


NOT_A_MANAGER = ("Channel managers see here the channels they manage and the alerts sent there. To change "
                 "what a channel is told: {who}`/leaderwatch help` lists what anyone can ask.")
NO_CHANNELS = ("No channel follows anything yet. In a channel, `/leaderwatch subscribe BOARD_PATTERN "
               "[RULE ...]` chooses what it is told (the bot must be invited there).")
NO_ALERTS = "No alert has been delivered to these channels yet."


def summaries(ctx: CommandContext, platform: str) -> list[ChannelSummary]:
    """Every channel of a platform with an active subscription, by channel id."""
    follows: dict[str, dict[str, list[str]]] = {}
    for sub in active_subscriptions(ctx.db):
        if sub.platform == platform:
            rules = follows.setdefault(sub.channel_id, {}).setdefault(sub.board_pattern, [])
            if sub.rule not in rules:
                rules.append(sub.rule)
    now = ctx.clock()
    out = []
    for channel_id, patterns in sorted(follows.items()):
        settings = channel_settings(ctx.db, platform, channel_id)
        out.append(ChannelSummary(channel_id, tuple((p, tuple(r)) for p, r in sorted(patterns.items())),
                                  describe_mutes(settings, now), describe_digest(settings)))
    return out


def sent_alerts(ctx: CommandContext, platform: str, channel_ids: list[str]) -> list[SentAlert]:
    """The last alerts delivered to those channels, newest first."""
    return [SentAlert(d.item.channel_id, d.item.message_ref or "", d.thread_ref,
                      f"{title_of(d.event.kind)} on {d.event.board}",
                      d.event.message.removeprefix(f"{d.event.board}: "), d.event.at)
            for d in outbox.recent_delivered(ctx.db, platform, channel_ids, RECENT_ALERTS)]


async def build_home(ctx: CommandContext, platform: str, user_id: str, user_name: str, manager: bool,
                     notice: str = "") -> Home:
    """The home of one person (`manager`: the adapter decided they manage channels, as for `subscribe`).

    The race is the typed `race` with no channel, so the default groups on the default boards, with its
    errors answered the way `dispatch` answers them. `notice` replaces the line for non-managers (an
    adapter that could not tell says so).
    """
    race = await dispatch(ctx, Invocation(platform, "", user_id, user_name, "race"))
    if not manager:
        return Home(ctx.clock(), False, (), (), race,
                    notice or NOT_A_MANAGER.format(who=WHO_MANAGES.get(platform, "")))
    channels = summaries(ctx, platform)
    alerts = sent_alerts(ctx, platform, [c.channel_id for c in channels])
    return Home(ctx.clock(), True, tuple(channels), tuple(alerts), race, notice)
