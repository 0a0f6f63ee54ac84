"""The buttons under an alert, and what a click does: the same commands as typed, for the person who clicked.

Every alert carries four buttons (`alert_actions`): *Why* and *Chart* answer the clicker only; *Mute
this board* (7 days, or 1 d / 30 d) and *Unsubscribe* are configuration, run as the typed `mute` and
`unsubscribe` through `dispatch`, so the same people may use them, the change is audited and made in
one transaction. A button names its alert by event key (`action_id`: `lw:why:<key>`, at most 100
characters as Discord requires), so it keeps working after a restart, and says so plainly when the
alert or the subscription it came from is gone. Where the platform has no confirmation dialog
(Discord), `question` is the step before a button that asks one (*Unsubscribe*).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from leaderwatch.alerts.formatting import Action, Reply
from leaderwatch.alerts.matching import board_matches
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.suites import Suites
from leaderwatch.bot.commands.registry import CommandContext, Invocation, dispatch
from leaderwatch.storage.db import Database
from leaderwatch.storage.events import event_by_key
from leaderwatch.storage.subscriptions import channel_subscriptions

PREFIX = "lw"
MUTE_CHOICES = ("1d", "7d", "30d")
MUTE_DEFAULT = "7d"
MAX_ACTION_ID = 100
"""Discord's limit on a component's custom id (Slack allows 255)."""
_ACTION_ID = re.compile(
    rf"^{PREFIX}:(?P<name>[a-z]+):(?P<ref>[0-9a-f]{{1,64}})(?::(?P<choice>[0-9a-z.]{{1,8}}))?$")

CONFIRMED = "yes"
"""The choice of the button that answers a button's question: `lw:unsubscribe:<key>:yes` runs it."""

NAMES = ("why", "chart", "mute", "unsubscribe")
"""What a button can do."""
CONFIGURES = frozenset({"mute", "unsubscribe"})
"""Buttons that change the channel's configuration: channel managers only."""

ALERT_GONE = ("This alert is no longer stored, so its buttons have nothing to answer with. "
              "`/leaderwatch events` lists the recent ones.")
NOT_SUBSCRIBED = ("This channel no longer follows anything that sent this alert ({board}, rule `{rule}`): "
                  "there is nothing to unsubscribe from. `/leaderwatch settings` shows what it follows.")
UNKNOWN_BUTTON = "This button belongs to an older leaderwatch and does nothing now. Type the command instead."


@dataclass(frozen=True, slots=True)
class Press:
    """One click on a button, whatever the platform: who, where, and the button's `action_id`."""

    platform: str
    channel_id: str
    user_id: str
    user_name: str
    action_id: str
    choice: str = ""
    """The value picked from the button's choices (a mute of 30d), when the platform sends it apart."""
    can_configure: bool = False


def action_id(action: Action, choice: str | None = None) -> str:
    """The platform id of a button (or of one of its choices): `lw:mute:<event key>:30d`."""
    picked = action.choice if choice is None else choice
    return f"{PREFIX}:{action.name}:{action.ref}" + (f":{picked}" if picked else "")


def parse_action_id(text: str) -> tuple[str, str, str] | None:
    """(name, event key, choice) of one of our buttons' ids, or None for any other id."""
    found = _ACTION_ID.match(text)
    if found is None:
        return None
    return found["name"], found["ref"], found["choice"] or ""


def configures(text: str) -> bool:
    """Whether a button's id names a configuration change (adapters check managers only for those)."""
    parsed = parse_action_id(text)
    return parsed is not None and parsed[0] in CONFIGURES


def alert_actions(event: Event, patterns: Sequence[str] = ()) -> tuple[Action, ...]:
    """The buttons of an alert; `patterns` are the channel's subscriptions that sent it (for the question
    *Unsubscribe* asks first)."""
    ref = event.dedupe_key
    followed = ", ".join(f"`{p}`" for p in patterns) or f"`{event.board}`"
    return (
        Action("why", "Why", ref),
        Action("chart", "Chart", ref),
        Action("mute", f"Mute this board ({MUTE_DEFAULT})", ref, MUTE_DEFAULT, MUTE_CHOICES),
        Action("unsubscribe", "Unsubscribe", ref, danger=True,
               confirm=f"This channel will stop getting alerts from {followed} (every rule on it). "
                       "Its other subscriptions stay."),
    )


def with_actions(reply: Reply, event: Event, patterns: Sequence[str] = ()) -> Reply:
    """An alert's reply with its buttons (a report or a digest gets none: they are not one alert)."""
    return replace(reply, actions=alert_actions(event, patterns))


def sending_patterns(db: Database, suites: Suites, platform: str, channel_id: str, event: Event) -> list[str]:
    """The board patterns of a channel's active subscriptions that would send this event."""
    rows = channel_subscriptions(db, platform, channel_id)
    patterns = {str(r["board_pattern"]) for r in rows if r["rule"] == event.rule}
    return sorted(p for p in patterns if board_matches(p, event.board, suites))


def question(ctx: CommandContext, click: Press) -> Reply | None:
    """The question a click asks before it runs, with the one button that answers it (`Yes, unsubscribe`),
    for platforms without a confirmation dialog (Slack shows `Action.confirm` itself); None when the
    click runs at once: it answers one, asks nothing, or has nothing to do (its alert is gone, or no
    subscription sent it), which `press` says plainly."""
    parsed = parse_action_id(click.action_id)
    if parsed is None or parsed[2] == CONFIRMED:
        return None
    name, ref, _ = parsed
    event = event_by_key(ctx.db, ref)
    if event is None:
        return None
    patterns = sending_patterns(ctx.db, ctx.suites, click.platform, click.channel_id, event)
    asking = next((a for a in alert_actions(event, patterns) if a.name == name and a.confirm), None)
    if asking is None or asking.confirm is None or not patterns:
        return None
    yes = replace(asking, label=f"Yes, {asking.label.lower()}", choice=CONFIRMED, confirm=None)
    return Reply(text=asking.confirm, title=f"{asking.label}?", ephemeral=True, actions=(yes,))


def private(reply: Reply) -> Reply:
    """A button's answer is for the person who clicked."""
    return replace(reply, ephemeral=True)


async def press(ctx: CommandContext, click: Press) -> Reply:
    """What a click answers (always privately); never raises, as `dispatch`."""
    parsed = parse_action_id(click.action_id)
    if parsed is None or parsed[0] not in NAMES:
        return Reply(text=UNKNOWN_BUTTON, ephemeral=True, error=True)
    name, ref, choice = parsed
    event = event_by_key(ctx.db, ref)
    if event is None:
        return Reply(text=ALERT_GONE, ephemeral=True, error=True)

    async def run(text: str) -> Reply:
        return private(await dispatch(ctx, Invocation(click.platform, click.channel_id, click.user_id,
                                                      click.user_name, text, click.can_configure)))

    if name == "why":
        return await run(f"why {event.board} at {event.at.isoformat()}")
    if name == "chart":
        return await run(f"chart {event.board}")
    if name == "mute":
        duration = click.choice or choice or MUTE_DEFAULT
        if duration not in MUTE_CHOICES:
            duration = MUTE_DEFAULT
        return await run(f"mute {event.board} {duration}")
    if not click.can_configure:  # refused by dispatch with who may, before anything is looked up
        return await run(f"unsubscribe {event.board}")
    patterns = sending_patterns(ctx.db, ctx.suites, click.platform, click.channel_id, event)
    if not patterns:
        return Reply(text=NOT_SUBSCRIBED.format(board=event.board, rule=event.rule), ephemeral=True)
    replies = [await run(f"unsubscribe {p}") for p in patterns]
    if len(replies) == 1:
        return replies[0]
    return Reply(title="Unsubscribed", text="\n".join(r.text for r in replies), ephemeral=True,
                 error=any(r.error for r in replies))
