"""The Slack adapter: `/leaderwatch` through slack_bolt (Socket Mode or HTTP), Block Kit, alert delivery.

Three jobs, as every adapter: a slash command payload becomes an `Invocation`, `dispatch` answers it,
and the neutral `Reply` becomes Block Kit, its chart (if any) a file uploaded to the channel after it.
A click on an alert's buttons becomes a `Press` for `press`, answered only to the clicker; opening the
app's Home tab publishes the `Home` the command layer builds for that person.
Slack's limits (3 s to ack, 50 blocks, 3,000 characters a text, 10 fields a section) live here.
`SlackSender` delivers alerts for the `Dispatcher`; it never retries by itself, so a 429 or a lost
connection is retried once by the dispatcher, which honours Retry-After and checks the channel's
history (message metadata) before posting again.

slack_bolt and slack_sdk are imported nowhere else.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.installation_store import Installation as SlackInstallation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from leaderwatch.alerts.durations import DurationError, parse_duration
from leaderwatch.alerts.formatting import Action, Reply, clean_text, clip, day, moment, plural
from leaderwatch.bot.chat.common import image_filename, split_text, table_lines
from leaderwatch.bot.commands import (
    COMMANDS,
    CommandContext,
    Invocation,
    apology,
    dispatch,
    parse_line,
)
from leaderwatch.bot.commands.actions import PREFIX, Press, action_id, configures, press
from leaderwatch.bot.commands.home import NO_ALERTS, NO_CHANNELS, ChannelSummary, Home, SentAlert, build_home
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.bot.settings import HOW_TO_GET, ConfigError, Settings
from leaderwatch.sources.http import parse_retry_after
from leaderwatch.storage import installations
from leaderwatch.storage.db import Database
from leaderwatch.storage.installations import InstallationError, TokenCipher, workspace_key

logger = logging.getLogger(__name__)

PLATFORM = "slack"
COMMAND = "/leaderwatch"
EVENTS_PATH = "/slack/events"
ALERT_EVENT_TYPE = "leaderwatch_alert"
"""`metadata.event_type` of every alert we post; `event_payload.delivery_key` identifies it."""

ACK_BUDGET_SECONDS = 2.0
"""How long a command may take before we ack with WORKING and answer through `response_url`.

Slack allows 3 s from its side, network included; 2 s leaves a second for the round trip."""
ADMIN_CACHE_SECONDS = 300.0
ACKS_FIRST_SECONDS = 1.0
"""How long the work of a click (or of the Home tab) waits for other requests' acks at most: its answer
goes by response_url (or views.publish), which does not hurry; Slack's 3 s for an ack do."""
MIN_POST_INTERVAL_SECONDS = 0.0
"""The sender's own wait between two calls to one channel: none, the dispatcher paces channels
(`[delivery] channel_interval`, one message a second) without holding a delivery slot."""
HISTORY_PAGES = 10

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK = 3000
MAX_ELEMENTS = 25
"""Elements of an `actions` block."""
MAX_BUTTON_TEXT = 75
MAX_OPTIONS = 5
"""Options of an `overflow` menu (at least 2)."""
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_VIEW_BLOCKS = 100
"""Blocks of a view (the Home tab)."""
MAX_HOME_CHANNELS = 30
"""Channels listed in a Home tab, so the race still fits in its 100 blocks."""
MAX_ALERT_LINE = 600
"""Characters of one of the Home tab's last alerts (its link included): ten fit one section."""
BUTTON_ACTIONS = re.compile(rf"^{re.escape(PREFIX)}:")
"""The action ids of our buttons (`lw:why:<event key>`): one listener takes them all."""

# User-facing texts of this adapter.
WORKING = "Working on it… the answer will appear here in a moment."
ADMIN_CHECK_FAILED = ("Could not check with Slack whether you may change this channel's configuration "
                      "(users.info failed: `{error}`). Nothing was changed; try again in a minute.")
TRUNCATED_ROWS = "… {rows} more row(s) not shown: Slack shows at most {blocks} blocks in a message."
TRUNCATED_BLOCKS = "… {n} more part(s) not shown: Slack shows at most {blocks} blocks in a message."
CHART_NOT_SHOWN = "The chart is not shown: Slack cannot attach a file to an answer only you can see."
CHART_FAILED = "The chart could not be posted to this channel (`{error}`). {hint}"
CHART_HINTS = {
    "not_in_channel": "Invite the bot with `/invite @leaderwatch` and ask again.",
    "channel_not_found": "Invite the bot with `/invite @leaderwatch` and ask again.",
    "missing_scope": "The Slack app needs the `files:write` scope (see slack/manifest.yml); ask its admin.",
}
CHART_RETRY = "Try again in a minute."
CONFIRM_DENY = "Cancel"
CHART_IN_DM = "The chart is in your direct messages with leaderwatch."
CHART_DM_FAILED = "The chart could not be sent to you as a direct message (`{error}`). {hint}"
CHART_DM_HINTS = {
    "missing_scope": "The Slack app needs the `im:write` scope (see slack/manifest.yml); ask its admin.",
    "cannot_dm_bot": "Slack does not let apps message that account.",
    "user_disabled": "Slack does not let apps message that account.",
}
CHART_DM_RETRY = "`/leaderwatch chart` with the board in a channel posts it there."
HOME_TITLE = "leaderwatch"
HOME_UPDATED = "As of {at}; refreshed each time you open this tab."
HOME_ADMIN_CHECK_FAILED = ("Could not check with Slack whether you manage channels (users.info failed: "
                           "`{error}`), so only the race is shown. Open this tab again in a minute.")
HOME_FAILED = ("Sorry, this page could not be built. The operator can find why in the log under error id "
               "`{error_id}`. `/leaderwatch help` still answers in any channel.")
HOME_MORE_CHANNELS = "… {n} more channel(s) not shown: `/leaderwatch settings` in each shows it all."

# chat.postMessage / conversations.history errors, by what they mean for a delivery.
CHANNEL_GONE_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "restricted_action",
})
"""The channel is gone or closed to the bot: retrying will not help; the channel is disabled."""
INSTALL_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
    "missing_scope", "not_allowed_token_type", "team_access_not_granted", "ekm_access_denied",
})
"""The token or app is broken for every channel at once: the operator must fix it. Retried slowly, so
alerts wait for the fix instead of being dropped or every channel being disabled."""
INSTALL_RETRY_SECONDS = 900.0
MESSAGE_GONE_ERRORS = frozenset({"message_not_found", "thread_not_found"})
"""The message to edit, or whose thread to reply in, was deleted: the follow-up goes out on its own."""
THREAD_UNREADABLE_ERRORS = frozenset({"missing_scope", "not_allowed_token_type"})
"""conversations.replies refused to the bot token (some installs do): the thread cannot be read, which
says nothing about whether its message exists. Waiting would not change it; the reply goes out unchecked."""
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_blocks"})
"""The message itself was refused: sent again as plain text only."""


# -- Block Kit ---------------------------------------------------------------------------------------

def escape(text: str) -> str:
    """The one way text reaches Slack's mrkdwn: cleaned (`clean_text`: no NUL, controls or bidi
    overrides) and the three characters mrkdwn treats as control escaped (`<!channel>` and
    `<https://x|link>` stay inert)."""
    return clean_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _preformatted(lines: Sequence[str]) -> dict[str, Any]:
    return _section("```\n" + escape("\n".join(lines)) + "\n```")


def _table_blocks(rows: Sequence[Sequence[str]]) -> list[tuple[dict[str, Any], int]]:
    """Preformatted sections of at most MAX_TEXT characters, each with how many data rows it holds."""
    lines = table_lines(rows)
    room = MAX_TEXT - len("```\n\n```")
    out: list[tuple[dict[str, Any], int]] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = line[: room // 5]  # even all `&` (5 characters escaped) fits one block
        cost = len(escape(line)) + 1
        if chunk and size + cost > room:
            out.append((_preformatted(chunk), len(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += cost
    if chunk:
        out.append((_preformatted(chunk), len(chunk)))
    if out:  # the header row is not a data row
        out[0] = (out[0][0], out[0][1] - 1)
    return out


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(clean_text(text), limit), "emoji": True}


def choice_label(choice: str) -> str:
    """How a button's choice reads in its menu: `1d` -> `1 day`, `30d` -> `30 days`; else as it is."""
    try:
        seconds = int(parse_duration(choice).total_seconds())
    except DurationError:
        return choice
    for word, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            return plural(seconds // size, word)
    return choice


def _button(action: Action) -> dict[str, Any]:
    """A button; one that asks first carries Slack's confirm dialog (its value: the choice, or the name)."""
    button: dict[str, Any] = {"type": "button", "action_id": action_id(action),
                              "text": _plain(action.label, MAX_BUTTON_TEXT),
                              "value": action.choice or action.name}
    if action.danger:
        button["style"] = "danger"
    if action.confirm:
        confirm: dict[str, Any] = {
            "title": _plain(f"{action.label}?", MAX_CONFIRM_TITLE),
            "text": {"type": "mrkdwn", "text": clip(escape(action.confirm), MAX_CONFIRM_TEXT)},
            "confirm": _plain(action.label, MAX_CONFIRM_BUTTON),
            "deny": _plain(CONFIRM_DENY, MAX_CONFIRM_BUTTON)}
        if action.danger:
            confirm["style"] = "danger"
        button["confirm"] = confirm
    return button


def _menu(action: Action) -> dict[str, Any]:
    """The other choices of a button as an overflow menu beside it; the picked value arrives as the
    action's `selected_option` (its id names no choice)."""
    options = [{"text": _plain(choice_label(c), MAX_BUTTON_TEXT), "value": c}
               for c in action.choices[:MAX_OPTIONS]]
    return {"type": "overflow", "action_id": action_id(action, ""), "options": options}


def actions_block(actions: Sequence[Action]) -> dict[str, Any] | None:
    """The buttons of a message as one `actions` block (a menu right after a button that offers choices)."""
    elements: list[dict[str, Any]] = []
    for action in actions:
        elements.append(_button(action))
        if len(action.choices) >= 2:
            elements.append(_menu(action))
    return {"type": "actions", "elements": elements[:MAX_ELEMENTS]} if elements else None


def to_blocks(reply: Reply) -> list[dict[str, Any]]:
    """A Reply as Block Kit within Slack's limits: long parts split, too many blocks truncated (the title,
    the footer and the buttons always stay)."""
    head: list[dict[str, Any]] = []
    if reply.title:
        head.append({"type": "header",
                     "text": {"type": "plain_text", "text": clip(clean_text(reply.title), MAX_HEADER),
                              "emoji": True}})
    body: list[tuple[dict[str, Any], int]] = []  # (block, table rows it holds)
    text = (":warning: " if reply.error else "") + escape(reply.text) if reply.text.strip() else ""
    body += [(_section(chunk), 0) for chunk in split_text(text, MAX_TEXT)]
    inline = [f for f in reply.fields if f.inline]
    wide = [f for f in reply.fields if not f.inline]
    for i in range(0, len(inline), MAX_FIELDS):
        fields = [{"type": "mrkdwn", "text": clip(f"*{escape(f.name)}*\n{escape(f.value)}", MAX_FIELD)}
                  for f in inline[i:i + MAX_FIELDS]]
        body.append(({"type": "section", "fields": fields}, 0))
    if wide:
        joined = "\n".join(f"*{escape(f.name)}*\n{escape(f.value)}" for f in wide)
        body += [(_section(chunk), 0) for chunk in split_text(joined, MAX_TEXT)]
    body += _table_blocks(reply.table)
    tail: list[dict[str, Any]] = []
    elements = []
    if reply.url:
        elements.append({"type": "mrkdwn", "text": clip(f"<{reply.url}|View the board>", MAX_FIELD)})
    if reply.footer:
        elements.append({"type": "mrkdwn", "text": clip(escape(reply.footer), MAX_FIELD)})
    if elements:
        tail.append({"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]})
    buttons = actions_block(reply.actions)
    if buttons is not None:
        tail.append(buttons)
    if len(head) + len(body) + len(tail) > MAX_BLOCKS:
        keep = MAX_BLOCKS - len(head) - len(tail) - 1
        dropped = body[keep:]
        rows = sum(n for _, n in dropped)
        if all(n > 0 for _, n in dropped):  # only table rows were left out: say how many
            note = TRUNCATED_ROWS.format(rows=rows, blocks=MAX_BLOCKS)
        else:
            note = TRUNCATED_BLOCKS.format(n=len(dropped), blocks=MAX_BLOCKS)
        body = body[:keep] + [({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}, 0)]
    return head + [b for b, _ in body] + tail


def fallback_text(reply: Reply) -> str:
    """The message's plain `text` (notifications, clients without Block Kit)."""
    return clip(escape(reply.plain()), MAX_FALLBACK) or " "


def to_message(reply: Reply) -> dict[str, Any]:
    """`text` and `blocks` of a Slack message for this Reply."""
    blocks = to_blocks(reply)
    return {"text": fallback_text(reply), "blocks": blocks} if blocks else {"text": fallback_text(reply)}


def response_type(reply: Reply) -> str:
    """Help, errors and settings only for the asker; answers to questions for the whole channel."""
    return "ephemeral" if reply.ephemeral or reply.error else "in_channel"


def without_private_image(reply: Reply) -> Reply:
    """An answer only the asker sees cannot carry a file: its chart is dropped, and the answer says so."""
    if reply.image is None or response_type(reply) == "in_channel":
        return reply
    return replace(reply, image=None, footer=" ".join(t for t in (reply.footer, CHART_NOT_SHOWN) if t))


async def upload_image(client: AsyncWebClient, channel_id: str, reply: Reply) -> None:
    """Post the reply's chart to a channel with `files_upload_v2`, its title as the comment.

    Three calls: files.getUploadURLExternal, the upload to the URL it returns, and
    files.completeUploadExternal, which shares the file in the channel (the bot must be a member).
    """
    assert reply.image is not None
    title = clean_text(reply.title or "Chart")
    await client.files_upload_v2(channel=channel_id, file=reply.image, filename=image_filename(reply),
                                 title=clip(title, MAX_HEADER), alt_txt=clip(title, 1000),
                                 initial_comment=clip(escape(title), MAX_TEXT))


# -- the slash command ---------------------------------------------------------------------------------

@dataclass
class AdminCheck:
    """Who may change a channel's configuration: workspace admins and owners, or configured users.

    `users.info` answers are cached for a few minutes so a burst of commands costs one call. With many
    workspaces (OAuth) each asks its own workspace, with the request's client (its workspace's token),
    and the cache is kept per workspace: an admin of one workspace is nobody in another.
    """

    client: AsyncWebClient
    configured: frozenset[str] = frozenset()
    ttl: float = ADMIN_CACHE_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    cache: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)

    async def can_configure(self, user_id: str, client: AsyncWebClient | None = None,
                            workspace: str = "") -> bool:
        """True for an admin, an owner or a configured user; SlackApiError when Slack cannot tell."""
        if user_id in self.configured:
            return True
        now = self.monotonic()
        cached = self.cache.get((workspace, user_id))
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        response = await (client or self.client).users_info(user=user_id)
        user = response.get("user") or {}
        allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self.cache[(workspace, user_id)] = (now, allowed)
        return allowed


def is_configuration(text: str) -> bool:
    """Whether a command line names a configuration command (only those need the admin check)."""
    name, _ = parse_line(unescape(text))
    cmd = COMMANDS.get(name)
    return cmd is not None and cmd.configures


def unescape(text: str) -> str:
    """Slack sends `&`, `<` and `>` typed by the user as `&amp;`, `&lt;` and `&gt;`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def to_invocation(command: Mapping[str, Any], can_configure: bool) -> Invocation:
    """A slash command payload as the neutral Invocation."""
    return Invocation(platform=PLATFORM, channel_id=str(command.get("channel_id", "")),
                      user_id=str(command.get("user_id", "")), user_name=str(command.get("user_name", "")),
                      text=unescape(str(command.get("text", ""))), can_configure=can_configure)


async def manager_check(admins: AdminCheck, user_id: str, client: AsyncWebClient | None = None,
                        workspace: str = "") -> tuple[bool, str | None]:
    """Whether a user may change channels' configuration (in `workspace`, asked with its `client`), and
    Slack's error when users.info could not tell (then False): logged here, for the slash command, the
    buttons and the Home tab alike."""
    try:
        return await admins.can_configure(user_id, client, workspace), None
    except SlackApiError as exc:
        error = _failure(exc)  # the body may be no JSON at all (a proxy's error page)
        if error == "missing_scope":
            logger.error("Slack: users.info needs the users:read scope (see slack/manifest.yml)")
        logger.warning("Slack: users.info for %s failed: %s", user_id, error)
        return False, error


async def answered(admins: AdminCheck, user_id: str, needs_admin: bool,
                   run: Callable[[bool], Awaitable[Reply]], what: str, client: AsyncWebClient | None = None,
                   workspace: str = "") -> Reply:
    """`run(can_configure)`'s Reply, the admin check made first when `needs_admin`; never raises.

    Two lanes, as `dispatch`: a failed check is answered (nothing was changed); anything else (a network
    error in users.info, a bug here) is logged with an error id, `what` saying what was being answered,
    and the user gets the apology with that id.
    """
    try:
        can_configure = False
        if needs_admin:
            can_configure, error = await manager_check(admins, user_id, client, workspace)
            if error is not None:
                return Reply(text=ADMIN_CHECK_FAILED.format(error=error), ephemeral=True, error=True)
        return await run(can_configure)
    except Exception as exc:
        return apology(f"Slack {what}", exc, logger)


async def send_response(respond: AsyncRespond, message: dict[str, Any], kind: str, **options: Any) -> None:
    """Post through response_url (an answer after the ack); failures are logged, never raised."""
    try:
        result = await respond(**message, response_type=kind, **options)
        if result.status_code != 200:
            logger.warning("Slack: response_url refused the answer: HTTP %d %s", result.status_code,
                           result.body[:200])
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # ValueError: no response_url
        logger.warning("Slack: could not post the answer to response_url: %r", exc)


def _failure(exc: BaseException) -> str:
    """A Web API failure as a short code for logs and users (`missing_scope`, `HTTP 500`, `TimeoutError`)."""
    if isinstance(exc, SlackApiError):
        return _error_code(exc) or f"HTTP {exc.response.status_code}"
    return type(exc).__name__


class AcksFirst:
    """The requests Slack is waiting to have acked, and a wait until there are none.

    Bolt sends a listener's ack only when it next looks (every 10 ms), and the work a click starts
    (the rules `why` reruns, a mute's write) is CPU on the same event loop: run at once, the work of a
    burst of clicks would hold back the acks of the clicks behind it (bench/bench_buttons.py). So that
    work first waits for the pending acks, its own included, at most `limit` seconds.
    """

    def __init__(self, limit: float = ACKS_FIRST_SECONDS) -> None:
        self.limit = limit
        self.pending = 0
        self.idle = asyncio.Event()
        self.idle.set()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """One request between its arrival and its ack."""
        self.pending += 1
        self.idle.clear()
        try:
            yield
        finally:
            self.pending -= 1
            if not self.pending:
                self.idle.set()

    async def done(self) -> None:
        """Return once no request waits for its ack, or after `limit` seconds whatever happens."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limit
        while self.pending:  # looked at again after each wake-up: a new request may have come meanwhile
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.idle.wait(), remaining)
            except TimeoutError:
                return


class SlackApp(AsyncApp):
    """Bolt's app, counting each request in `acks` until Bolt has its ack (HTTP and Socket Mode both
    dispatch through here)."""

    def __init__(self, *, acks: AcksFirst, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acks = acks

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        """Bolt's dispatch, the request counted as waiting for its ack meanwhile."""
        with self.acks.waiting():
            return await super().async_dispatch(req)


class SlashCommand:
    """The `/leaderwatch` listener: answer within the ack when quick, else ack and answer later."""

    def __init__(self, ctx: CommandContext, admins: AdminCheck, budget: float = ACK_BUDGET_SECONDS,
                 workspaces: Workspaces | None = None) -> None:
        self.ctx, self.admins, self.budget = ctx, admins, budget
        self.workspaces = workspaces
        self.pending: set[asyncio.Task[Reply]] = set()

    async def answer(self, command: Mapping[str, Any], client: AsyncWebClient | None = None,
                     workspace: str = "") -> Reply:
        """The Reply to one slash command (from `workspace`, whose `client` asks users.info); never raises."""
        text = str(command.get("text", ""))
        needs_admin = is_configuration(text)

        async def run(can_configure: bool) -> Reply:
            return await dispatch(self.ctx, to_invocation(command, can_configure))

        what = f"command (channel={command.get('channel_id')} text={text!r})"
        reply = await answered(self.admins, str(command.get("user_id", "")), needs_admin, run, what, client,
                               workspace)
        if needs_admin and self.workspaces is not None:
            self.workspaces.stamp(str(command.get("channel_id", "")), workspace)
        return reply

    async def __call__(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond,
                       client: AsyncWebClient, context: AsyncBoltContext) -> None:
        """Bolt listener (arguments injected by name). A chart follows the answer as a file upload."""
        work = asyncio.create_task(self.answer(command, client, workspace_of(context)))
        self.pending.add(work)
        work.add_done_callback(self.pending.discard)
        done, _ = await asyncio.wait({work}, timeout=self.budget)
        if work in done:
            reply = without_private_image(work.result())
            await ack(**to_message(reply), response_type=response_type(reply))
        else:
            await ack(text=WORKING, response_type="ephemeral")
            reply = without_private_image(await work)
            await send_response(respond, to_message(reply), response_type(reply))
        if reply.image is not None:
            await self.post_image(client, str(command.get("channel_id", "")), reply, respond)

    async def post_image(self, client: AsyncWebClient, channel_id: str, reply: Reply,
                         respond: AsyncRespond) -> None:
        """Upload the answer's chart to the channel; when that fails, tell the asker why (only them)."""
        try:
            await upload_image(client, channel_id, reply)
            return
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            error = _failure(exc)
        logger.warning("Slack: could not upload a chart to channel %s: %s", channel_id, error)
        text = CHART_FAILED.format(error=error, hint=CHART_HINTS.get(error, CHART_RETRY))
        await send_response(respond, {"text": text}, "ephemeral")


# -- the buttons under alerts ----------------------------------------------------------------------------

def to_press(body: Mapping[str, Any], can_configure: bool) -> Press:
    """A `block_actions` payload (its first action) as the neutral Press; an overflow menu's pick is the
    choice."""
    action = (body.get("actions") or [{}])[0]
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
    return Press(PLATFORM, str(channel), str(user.get("id") or ""),
                 str(user.get("username") or user.get("name") or ""), str(action.get("action_id") or ""),
                 str((action.get("selected_option") or {}).get("value") or ""), can_configure)


class ButtonPress:
    """The listener of our buttons: ack at once (Slack waits 3 s at most, and the click's work may take
    longer), let the other pending acks go first (`AcksFirst`), run the click through `press`, answer
    only the clicker through response_url without touching the alert. A chart goes to the clicker's
    direct messages: an ephemeral answer cannot carry a file."""

    def __init__(self, ctx: CommandContext, admins: AdminCheck, acks: AcksFirst,
                 workspaces: Workspaces | None = None) -> None:
        self.ctx, self.admins, self.acks, self.workspaces = ctx, admins, acks, workspaces

    async def answer(self, body: Mapping[str, Any], client: AsyncWebClient | None = None,
                     workspace: str = "") -> Reply:
        """The Reply to one click; never raises. users.info is asked only for mute and unsubscribe."""
        click = to_press(body, False)
        needs_admin = configures(click.action_id)

        async def run(can_configure: bool) -> Reply:
            return await press(self.ctx, replace(click, can_configure=can_configure))

        reply = await answered(self.admins, click.user_id, needs_admin, run,
                               f"button {click.action_id} (channel={click.channel_id} user={click.user_id})",
                               client, workspace)
        if needs_admin and self.workspaces is not None:
            self.workspaces.stamp(click.channel_id, workspace)
        return reply

    async def __call__(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond,
                       client: AsyncWebClient, context: AsyncBoltContext) -> None:
        """Bolt listener (arguments injected by name)."""
        await ack()
        await self.acks.done()
        reply = await self.answer(body, client, workspace_of(context))
        if reply.image is not None:
            reply = await self.send_chart(client, str((body.get("user") or {}).get("id") or ""), reply)
        # replace_original=False: an answer to a message's response_url otherwise replaces the alert.
        await send_response(respond, to_message(reply), "ephemeral", replace_original=False)

    async def send_chart(self, client: AsyncWebClient, user_id: str, reply: Reply) -> Reply:
        """Upload the reply's chart in the app's direct messages with the user; the reply without it,
        saying where it went or why it did not."""
        try:
            opened = await client.conversations_open(users=user_id)
            await upload_image(client, str((opened.get("channel") or {}).get("id") or ""), reply)
            note = CHART_IN_DM
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            error = _failure(exc)
            logger.warning("Slack: could not send a chart to %s as a direct message: %s", user_id, error)
            if error == "missing_scope":
                logger.error("Slack: direct messages need the im:write scope (see slack/manifest.yml)")
            note = CHART_DM_FAILED.format(error=error, hint=CHART_DM_HINTS.get(error, CHART_DM_RETRY))
        return replace(reply, image=None, footer=" ".join(t for t in (reply.footer, note) if t))


# -- the Home tab ----------------------------------------------------------------------------------------

def permalink(workspace_url: str, channel_id: str, ts: str, thread_ts: str | None = None) -> str:
    """A message's link as chat.getPermalink gives it, from the workspace URL auth.test returned (no call
    per message)."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


def _channel_text(channel: ChannelSummary) -> str:
    lines = [f"*<#{channel.channel_id}>*"]
    lines += [f"• `{escape(pattern)}`: " + ", ".join(f"`{escape(r)}`" for r in rules)
              for pattern, rules in channel.follows]
    lines.append(f"*Mute:* {escape(channel.mutes)}")
    lines.append(f"*Digest:* {escape(channel.digest)}")
    return clip("\n".join(lines), MAX_TEXT)


def _alert_line(alert: SentAlert, workspace_url: str) -> str:
    title = escape(alert.title)
    if workspace_url:
        title = f"<{permalink(workspace_url, alert.channel_id, alert.message_ref, alert.thread_ref)}|{title}>"
    where = " (in a thread)" if alert.thread_ref else ""
    return clip(f"• {title} in <#{alert.channel_id}>{where}, {day(alert.at)}: {escape(alert.text)}",
                MAX_ALERT_LINE)


def home_view(home: Home, workspace_url: str) -> dict[str, Any]:
    """A Home as the `home` view views.publish takes, within its 100 blocks (links need the workspace
    URL; without it the titles are plain)."""
    updated = HOME_UPDATED.format(at=moment(home.at))
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(HOME_TITLE, MAX_HEADER)},
                                    {"type": "context", "elements": [{"type": "mrkdwn", "text": updated}]}]
    if home.notice:
        blocks.append(_section(escape(home.notice)))
    if home.manager:
        blocks.append({"type": "header", "text": _plain("Your channels", MAX_HEADER)})
        if not home.channels:
            blocks.append(_section(escape(NO_CHANNELS)))
        blocks += [_section(_channel_text(c)) for c in home.channels[:MAX_HOME_CHANNELS]]
        if len(home.channels) > MAX_HOME_CHANNELS:
            note = HOME_MORE_CHANNELS.format(n=len(home.channels) - MAX_HOME_CHANNELS)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
        blocks.append({"type": "header", "text": _plain("Last alerts", MAX_HEADER)})
        lines = [_alert_line(a, workspace_url) for a in home.alerts] or [escape(NO_ALERTS)]
        blocks += [_section(chunk) for chunk in split_text("\n".join(lines), MAX_TEXT)]
    blocks.append({"type": "divider"})
    blocks += to_blocks(home.race)
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def failed_view(error_id: str) -> dict[str, Any]:
    """The Home published when building it failed: what happened and where to look, no details."""
    return {"type": "home", "blocks": [{"type": "header", "text": _plain(HOME_TITLE, MAX_HEADER)},
                                       _section(escape(HOME_FAILED.format(error_id=error_id)))]}


@dataclass
class Workspace:
    """What `SlackService.start` learnt from auth.test about the workspace: its URL, which the Home tab's
    links start with (`https://<team>.slack.com/`); empty until then, and the links are left out."""

    url: str = ""


class HomeTab:
    """The `app_home_opened` listener: build the opener's Home afresh and publish it (Bolt acks events
    itself). Whatever fails is logged; the tab then says it could not be built."""

    def __init__(self, ctx: CommandContext, admins: AdminCheck, acks: AcksFirst,
                 workspace: Workspace, workspaces: Workspaces | None = None) -> None:
        self.ctx, self.admins, self.acks, self.workspace = ctx, admins, acks, workspace
        self.workspaces = workspaces

    async def view(self, user_id: str, client: AsyncWebClient | None = None, workspace: str = "",
                   url: str = "") -> dict[str, Any]:
        """The home view of one user (a manager as for `subscribe`: admins, owners, configured users);
        with many workspaces, only the channels of the user's own."""
        manager, error = await manager_check(self.admins, user_id, client, workspace)
        notice = HOME_ADMIN_CHECK_FAILED.format(error=error) if error is not None else ""
        home = await build_home(self.ctx, PLATFORM, user_id, "", manager, notice)
        if self.workspaces is not None and self.workspaces.multi:
            home = self.workspaces.only_own(home, workspace)
        return home_view(home, self.workspace.url or url)

    async def __call__(self, event: dict[str, Any], client: AsyncWebClient,
                       context: AsyncBoltContext) -> None:
        """Bolt listener (arguments injected by name); the Messages tab opening publishes nothing."""
        user_id = str(event.get("user") or "")
        if not user_id or event.get("tab", "home") != "home":
            return
        await self.acks.done()
        result = context.authorize_result
        url = str(result.url or "") if result is not None else ""
        try:
            view, built = await self.view(user_id, client, workspace_of(context), url), True
        except Exception:
            view, built = self.failed(user_id), False
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            logger.warning("Slack: views.publish of the Home of %s failed: %s", user_id, _failure(exc))
            if built and _error_code(exc) == "invalid_arguments":  # our blocks refused (logged with them)
                await self.publish(client, user_id, self.failed(user_id))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Slack: views.publish of the Home of %s failed: %s", user_id, _failure(exc))

    def failed(self, user_id: str) -> dict[str, Any]:
        """Log what went wrong (the exception being handled, under an error id) and the view saying so."""
        error_id = secrets.token_hex(4)
        logger.exception("Slack Home of %s failed [error id %s]", user_id, error_id)
        return failed_view(error_id)

    async def publish(self, client: AsyncWebClient, user_id: str, view: dict[str, Any]) -> None:
        """views.publish whose failure is only logged."""
        try:
            await client.views_publish(user_id=user_id, view=view)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Slack: views.publish of the Home of %s failed again: %s", user_id, _failure(exc))


async def drop_bot_events(body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
    """Global middleware: events sent by bots (ours included) go no further."""
    event = body.get("event") or {}
    if isinstance(event, dict) and (event.get("bot_id") or event.get("subtype") == "bot_message"):
        return BoltResponse(status=200, body="")
    await next_()
    return None


# -- many workspaces: OAuth installs -------------------------------------------------------------------

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
BOT_SCOPES = ("commands", "chat:write", "users:read", "files:write", "im:write", "channels:history",
              "groups:history", "im:history", "mpim:history")
"""The bot scopes an install asks for: those of slack/manifest.yml (a test keeps the two equal)."""
REMOVING_EVENTS = ("app_uninstalled", "tokens_revoked")
INSTALLED_PAGE = ("<h1>leaderwatch is installed in {team}</h1><p>Invite it to each channel that should get "
                  "alerts with <code>/invite @leaderwatch</code>, then type <code>/leaderwatch help</code> "
                  "there. Workspace admins and owners choose what a channel follows with "
                  "<code>/leaderwatch subscribe</code>.</p>")
INSTALL_FAILED_PAGE = ("<h1>leaderwatch was not installed</h1><p>{why}</p><p>Nothing was installed. Start "
                       "again from <a href=\"{install}\">{install}</a>.</p>")
INSTALL_FAILURES = {
    "invalid_browser": "This install was not started in this browser, or its cookie expired.",
    "invalid_state": ("This install link was not issued by leaderwatch, has expired (after 10 minutes) or "
                      "was used already."),
    "access_denied": "The install was cancelled on Slack's page.",
    "missing_code": "Slack sent no install code.",
    "invalid_code": "Slack did not accept the install code (it may have been used already).",
    "storage_error": "The installation could not be saved; the operator can find why in the log.",
}
INSTALL_FAILED_OTHER = "Slack answered `{reason}`."


def workspace_of(context: Mapping[str, Any]) -> str:
    """The workspace of a request: its team, or its organization for an org-wide install."""
    return workspace_key(context.get("team_id"), context.get("enterprise_id"),
                         bool(context.get("is_enterprise_install")))


class Workspaces:
    """Which workspace each channel belongs to (remembered from every request that names a channel), and
    with many workspaces (`cipher` given: OAuth) the installed ones and their tokens.

    Remembered once per channel per process; a failed write is logged and the request goes on (it is
    remembered at the channel's next request).
    """

    def __init__(self, db: Database, clock: Callable[[], datetime],
                 cipher: TokenCipher | None = None) -> None:
        self.db, self.clock, self.cipher = db, clock, cipher
        self.known: dict[str, str] = {}

    @property
    def multi(self) -> bool:
        """True for a public app installed by many workspaces."""
        return self.cipher is not None

    def remember(self, channel_id: str, workspace: str) -> None:
        """Record that `channel_id` is in `workspace` (a write only when this process did not know it)."""
        if not channel_id or not workspace or self.known.get(channel_id) == workspace:
            return
        try:
            installations.record_channel(self.db, PLATFORM, channel_id, workspace, self.clock())
        except Exception as exc:  # e.g. a locked database: the request must still be answered
            logger.warning("Slack: could not record that channel %s is in workspace %s: %r", channel_id,
                           workspace, exc)
            return
        self.known[channel_id] = workspace

    def stamp(self, channel_id: str, workspace: str) -> None:
        """Write the workspace on the channel's new audit rows (after a configuration command or click) of
        a public app; one workspace's audit needs none."""
        if not self.multi or not channel_id or not workspace:
            return
        try:
            installations.stamp_audit(self.db, PLATFORM, channel_id, workspace)
        except Exception as exc:
            logger.warning("Slack: could not write workspace %s on the audit of %s: %r", workspace,
                           channel_id, exc)

    def only_own(self, home: Home, workspace: str) -> Home:
        """A Home with only the channels (and their alerts) of `workspace`."""
        own = set(installations.workspace_channels(self.db, PLATFORM, workspace))
        return replace(home, channels=tuple(c for c in home.channels if c.channel_id in own),
                       alerts=tuple(a for a in home.alerts if a.channel_id in own))

    def remove(self, workspace: str, reason: str) -> installations.Removed:
        """Forget a workspace: its installation, its channels' subscriptions and settings (audit kept)."""
        removed = installations.remove_workspace(self.db, PLATFORM, workspace, reason, self.clock())
        self.known = {c: w for c, w in self.known.items() if w != workspace}
        logger.info("Slack: workspace %s removed (%s): installation %s, %d channel(s), %d subscription(s), "
                    "%d channel setting(s), %d undelivered alert(s) dropped; audit kept", workspace, reason,
                    "deleted" if removed.installation else "already gone", removed.channels,
                    removed.subscriptions, removed.settings, removed.pending)
        return removed

    def _cipher(self) -> TokenCipher:
        if self.cipher is None:
            raise InstallationError("no LEADERWATCH_SECRET_KEY: installs need OAuth mode")
        return self.cipher

    def find(self, workspace: str) -> installations.Installation | None:
        """A workspace's installation (its token decrypted), or None."""
        return installations.find_installation(self.db, self._cipher(), PLATFORM, workspace)

    def save(self, install: installations.Installation) -> None:
        """Store an installation, the token encrypted."""
        installations.save_installation(self.db, self._cipher(), install, self.clock())

    def channel_token(self, channel_id: str) -> str | None:
        """The bot token of a channel's workspace; None when unknown or uninstalled."""
        return installations.channel_token(self.db, self._cipher(), PLATFORM, channel_id)


def _installed_at(install: installations.Installation) -> float:
    return install.installed_at.timestamp() if install.installed_at else time.time()


class InstallationStore(AsyncInstallationStore):
    """slack_sdk's installation store on leaderwatch's database (`storage.installations`): bot installs
    only, the token encrypted. Bolt's OAuth flow saves here; its authorize finds each request's token here."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    @property
    def logger(self) -> logging.Logger:
        """The logger slack_sdk expects."""
        return logger

    async def async_save(self, installation: SlackInstallation) -> None:
        """Store a new install (or a reinstall); BoltError (the failure page) when it cannot be stored."""
        self._save(installation.to_bot(), installation.user_id)
        workspace = workspace_key(installation.team_id, installation.enterprise_id,
                                  bool(installation.is_enterprise_install))
        name = installation.team_name or installation.enterprise_name
        logger.info("Slack: installed in %s (%s) by %s", name, workspace, installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """Store a workspace's bot (token encrypted)."""
        self._save(bot, None)

    def _save(self, bot: Bot, installer: str | None) -> None:
        if not bot.bot_token:
            raise BoltError("the install carries no bot token")
        workspace = workspace_key(bot.team_id, bot.enterprise_id, bool(bot.is_enterprise_install))
        install = installations.Installation(
            platform=PLATFORM, workspace=workspace, team_id=bot.team_id, enterprise_id=bot.enterprise_id,
            bot_token=bot.bot_token, bot_user_id=bot.bot_user_id or "", bot_id=bot.bot_id or "",
            bot_scopes=tuple(bot.bot_scopes or ()), team_name=bot.team_name,
            enterprise_name=bot.enterprise_name,
            is_enterprise_install=bool(bot.is_enterprise_install), app_id=bot.app_id,
            installer_user_id=installer)
        try:
            self.workspaces.save(install)
        except Exception as exc:
            logger.exception("Slack: the install of workspace %s could not be stored", workspace)
            raise BoltError(f"the install of workspace {workspace} could not be stored") from exc

    def _find(self, enterprise_id: str | None, team_id: str | None,
              is_enterprise_install: bool | None) -> installations.Installation | None:
        workspace = workspace_key(team_id, enterprise_id, bool(is_enterprise_install))
        try:
            return self.workspaces.find(workspace)
        except InstallationError as exc:
            logger.error("Slack: workspace %s: %s", workspace, exc)
            return None

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        """The bot of the workspace a request comes from (Bolt's authorize), or None: not installed."""
        found = self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None:
            return None
        return Bot(app_id=found.app_id, enterprise_id=found.enterprise_id,
                   enterprise_name=found.enterprise_name, team_id=found.team_id, team_name=found.team_name,
                   bot_token=found.bot_token,
                   bot_id=found.bot_id, bot_user_id=found.bot_user_id, bot_scopes=list(found.bot_scopes),
                   is_enterprise_install=found.is_enterprise_install, installed_at=_installed_at(found))

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> SlackInstallation | None:
        """The workspace's install as slack_sdk's Installation (bot only: no user token is kept)."""
        found = self._find(enterprise_id, team_id, is_enterprise_install)
        if found is None:
            return None
        return SlackInstallation(
            app_id=found.app_id, enterprise_id=found.enterprise_id, enterprise_name=found.enterprise_name,
            team_id=found.team_id, team_name=found.team_name, bot_token=found.bot_token, bot_id=found.bot_id,
            bot_user_id=found.bot_user_id, bot_scopes=list(found.bot_scopes),
            user_id=found.installer_user_id or "", is_enterprise_install=found.is_enterprise_install,
            installed_at=_installed_at(found))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget the workspace (Bolt's token revocation path; leaderwatch's own listeners do the same)."""
        self.workspaces.remove(workspace_key(team_id, enterprise_id, bool(enterprise_id and not team_id)),
                               "bot token deleted")

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        """Nothing per user is kept: only a bot deletion forgets the workspace."""


class StateStore(AsyncOAuthStateStore):
    """slack_sdk's OAuth state store on leaderwatch's database: each state random, valid 10 minutes, and
    accepted once (any replica can finish an install another one started)."""

    def __init__(self, db: Database, clock: Callable[[], datetime],
                 seconds: int = installations.STATE_SECONDS) -> None:
        self.db, self.clock, self.seconds = db, clock, seconds

    @property
    def logger(self) -> logging.Logger:
        """The logger slack_sdk expects."""
        return logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        """A new state for an install starting now."""
        return installations.issue_state(self.db, self.clock(), self.seconds)

    async def async_consume(self, state: str) -> bool:
        """True once for a state issued here and still valid."""
        return installations.consume_state(self.db, state or "", self.clock())


def _page(status: int, body: str) -> BoltResponse:
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>leaderwatch</title></head>"
            f"<body>{body}</body></html>")
    return BoltResponse(status=status, body=page, headers={"Content-Type": "text/html; charset=utf-8"})


async def installed_page(args: AsyncSuccessArgs) -> BoltResponse:
    """The page an installer sees once the workspace is installed: what to do next."""
    team = args.installation.team_name or args.installation.enterprise_name or args.installation.team_id or ""
    return _page(200, INSTALLED_PAGE.format(team=html.escape(team)))


async def install_failed_page(args: AsyncFailureArgs) -> BoltResponse:
    """The page of a refused install (a forged or expired state, a cancelled install): why, and where to
    start again. Logged as a warning (no secret in it)."""
    why = INSTALL_FAILURES.get(args.reason) or INSTALL_FAILED_OTHER.format(reason=args.reason)
    logger.warning("Slack: an install was refused: %s", args.reason)
    install = html.escape(args.settings.install_path)
    return _page(args.suggested_status_code,
                 INSTALL_FAILED_PAGE.format(why=html.escape(why), install=install))


def oauth_settings(settings: Settings, workspaces: Workspaces) -> AsyncOAuthSettings:
    """Bolt's OAuth flow: the manifest's bot scopes, leaderwatch's stores, a redirect to Slack from
    /slack/install (no intermediate page), leaderwatch's own result pages."""
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES), user_scopes=[], redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH, install_page_rendering_enabled=False, redirect_uri_path=REDIRECT_PATH,
        callback_options=AsyncCallbackOptions(success=installed_page, failure=install_failed_page),
        installation_store=InstallationStore(workspaces), installation_store_bot_only=True,
        state_store=StateStore(workspaces.db, workspaces.clock))


class RemoveWorkspace:
    """The `app_uninstalled` and `tokens_revoked` listener: the workspace is forgotten (its installation,
    subscriptions and channel settings; the audit is kept), in one log line. A `tokens_revoked` that
    revokes only user tokens changes nothing: leaderwatch keeps none."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    async def __call__(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        """Bolt listener (arguments injected by name; Bolt acks events itself)."""
        kind = str(event.get("type") or "")
        if kind == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
            return
        workspace = workspace_of(context)
        if workspace:
            self.workspaces.remove(workspace, kind)


def remember_channels(workspaces: Workspaces) -> Callable[..., Awaitable[None]]:
    """Global middleware: remember the workspace of every channel a request comes from (a command, a click,
    an event), so alerts to it go with that workspace's token."""
    async def remember(context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]) -> None:
        workspaces.remember(str(context.channel_id or ""), workspace_of(context))
        await next_()
    return remember


LOOK_AGAIN_SECONDS = 600.0
"""How long a channel no installed workspace had is given up before it is looked for again."""


class WorkspaceClients:
    """The alert sender's Web API client for each channel: the client of its workspace's token (one per
    token, reused). A channel whose workspace is not recorded (subscribed before the app went public, when
    one token served one workspace) is looked for once in each installed workspace (with its token) and
    recorded where found; a channel no installed workspace has is given up."""

    def __init__(self, workspaces: Workspaces, make: Callable[[str], AsyncWebClient],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.workspaces, self.make, self.monotonic = workspaces, make, monotonic
        self.clients: dict[str, AsyncWebClient] = {}
        self.scopes: dict[str, str] | None = None
        """Channel -> workspace as recorded, read whole at the first `workspace_of` ("" when unrecorded)."""
        self.not_found: dict[str, float] = {}
        """Channels no installed workspace had, and when that was found (looked for again after
        `LOOK_AGAIN_SECONDS`: a workspace may install meanwhile)."""

    async def __call__(self, channel_id: str) -> AsyncWebClient:
        """The client for `channel_id`; DeliveryError when no token can reach it."""
        try:
            token = self.workspaces.channel_token(channel_id)
        except InstallationError as exc:
            logger.error("Slack: channel %s: %s", channel_id, exc)
            raise DeliveryError(f"channel {channel_id}: its workspace's token cannot be decrypted (see the "
                                f"log)", retryable=True, retry_after=INSTALL_RETRY_SECONDS) from None
        if token is None:
            token = await self._look_for(channel_id)
        if token is None:
            raise DeliveryError(f"channel {channel_id}: its workspace has not installed the app (or removed "
                                f"it)", retryable=False, channel_gone=True)
        return self._client_of(token)

    def workspace_of(self, channel_id: str) -> str:
        """The workspace a channel is in, as recorded ("" when it is not): Slack counts its rate limits per
        workspace, so the dispatcher paces each workspace on its own (`Dispatcher._scope`). Every recorded
        channel is read in one query at the first call; one the process has not seen is asked for once."""
        known = self.workspaces.known.get(channel_id)  # remembered by this process (a request, a look-up)
        if known:
            return known
        if self.scopes is None:
            self.scopes = installations.all_channel_workspaces(self.workspaces.db, PLATFORM)
        scope = self.scopes.get(channel_id)
        if scope is None:
            scope = self.scopes[channel_id] = installations.channel_workspace(
                self.workspaces.db, PLATFORM, channel_id) or ""
        return scope

    def _client_of(self, token: str) -> AsyncWebClient:
        client = self.clients.get(token)
        if client is None:
            client = self.clients[token] = self.make(token)
        return client

    async def _look_for(self, channel_id: str) -> str | None:
        """The token of the installed workspace that has `channel_id` (recorded for next time), or None."""
        since = self.not_found.get(channel_id)
        if since is not None and self.monotonic() - since < LOOK_AGAIN_SECONDS:
            return None
        for workspace in installations.installed_workspaces(self.workspaces.db, PLATFORM):
            try:
                install = self.workspaces.find(workspace)
            except InstallationError as exc:
                logger.error("Slack: workspace %s: %s", workspace, exc)
                continue
            if install is None:
                continue
            try:
                # conversations.history: its scopes (channels:history...) are the app's already, for the
                # checks after a crash; conversations.info would need channels:read besides.
                await self._client_of(install.bot_token).conversations_history(channel=channel_id, limit=1)
            except SlackApiError:
                continue  # channel_not_found: another workspace's channel (or none's)
            self.workspaces.remember(channel_id, workspace)
            logger.info("Slack: channel %s is in workspace %s (found by asking each installed workspace: "
                        "it was subscribed before the app was installed there)", channel_id, workspace)
            return install.bot_token
        self.not_found[channel_id] = self.monotonic()
        return None


def web_client(settings: Settings, *, retry_rate_limits: bool, token: str | None = None) -> AsyncWebClient:
    """A Web API client with the bot token (`token`, else SLACK_BOT_TOKEN; none for the OAuth app, whose
    requests each get their workspace's), pointed at `LEADERWATCH_SLACK_API_URL` when set.

    `retry_rate_limits`: for the command side (users.info), a 429 is waited out in place. The alert
    client retries nothing (not even a dropped connection, which may hide a message Slack accepted):
    the Dispatcher retries with backoff and checks the channel's history first.
    """
    handlers = ([AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
                if retry_rate_limits else [])
    kwargs: dict[str, Any] = {"token": token or settings.slack_bot_token, "retry_handlers": handlers}
    if settings.slack_api_url:
        base = settings.slack_api_url
        kwargs["base_url"] = base if base.endswith("/") else base + "/"  # URLs are built with urljoin
    return AsyncWebClient(**kwargs)


def build_slack_app(settings: Settings, ctx: CommandContext, *, budget: float = ACK_BUDGET_SECONDS,
                    admin_cache_seconds: float = ADMIN_CACHE_SECONDS,
                    monotonic: Callable[[], float] = time.monotonic,
                    workspace: Workspace | None = None, workspaces: Workspaces | None = None) -> AsyncApp:
    """The Bolt app answering `/leaderwatch`, the buttons under alerts and the Home tab (signature
    verification on in HTTP mode; Socket Mode routes the same listeners). `workspace` is filled in by
    `SlackService.start` for the Home tab's links.

    With SLACK_CLIENT_ID / SLACK_CLIENT_SECRET (`workspaces` then holds the token cipher) it is a public
    app: Bolt's OAuth flow installs it in any workspace, each request runs with its workspace's token
    from the database, and uninstalls and revoked tokens forget the workspace."""
    multi = workspaces is not None and workspaces.multi
    if not settings.slack_bot_token and not multi:
        raise ConfigError(f"SLACK_BOT_TOKEN: required for Slack ({HOW_TO_GET['SLACK_BOT_TOKEN']})")
    if (settings.slack_mode == "http" or multi) and not settings.slack_signing_secret:
        raise ConfigError(f"SLACK_SIGNING_SECRET: required in HTTP mode and for OAuth installs "
                          f"({HOW_TO_GET['SLACK_SIGNING_SECRET']})")
    client = web_client(settings, retry_rate_limits=True)
    # The signing secret is passed even when empty so Bolt never falls back to the environment.
    # Not named "leaderwatch": Bolt sets the level of the logger named after the app (ours is the root
    # of every leaderwatch logger).
    acks = AcksFirst()
    oauth: dict[str, Any] = {}
    if multi:
        assert workspaces is not None
        oauth["oauth_settings"] = oauth_settings(settings, workspaces)
    app = SlackApp(acks=acks, client=client, signing_secret=settings.slack_signing_secret or "",
                   name="leaderwatch-slack", ignoring_self_events_enabled=True, **oauth)
    admins = AdminCheck(client, frozenset(settings.slack_admins), admin_cache_seconds, monotonic)
    app.middleware(drop_bot_events)
    if multi:
        assert workspaces is not None
        # Only a public app needs it (its alerts pick a token by channel): one write per new channel, on
        # the request's path, which a single workspace's requests are spared.
        app.middleware(remember_channels(workspaces))
    app.command(COMMAND)(SlashCommand(ctx, admins, budget, workspaces))
    app.action(BUTTON_ACTIONS)(ButtonPress(ctx, admins, acks, workspaces))
    app.event("app_home_opened")(HomeTab(ctx, admins, acks, workspace or Workspace(), workspaces))
    if multi:
        assert workspaces is not None
        for kind in REMOVING_EVENTS:
            app.event(kind)(RemoveWorkspace(workspaces))
    return app


def _bolt_handler(handle: Callable[[AsyncBoltRequest], Awaitable[BoltResponse]]) -> Callable[
        [web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await handle(await to_bolt_request(request)))
    return handler


def slack_routes(app: AsyncApp, path: str = EVENTS_PATH, *, events: bool = True) -> list[web.RouteDef]:
    """`POST /slack/events` for the one aiohttp server (HTTP mode), and for a public app (OAuth)
    `GET /slack/install` (a state cookie and a redirect to Slack's authorize page) and
    `GET /slack/oauth_redirect` (where Slack sends the installer back)."""
    routes = [web.post(path, _bolt_handler(app.async_dispatch))] if events else []
    flow = app.oauth_flow
    if flow is not None:
        routes += [web.get(flow.install_path, _bolt_handler(flow.handle_installation)),
                   web.get(flow.redirect_uri_path, _bolt_handler(flow.handle_callback))]
    return routes


# -- alerts --------------------------------------------------------------------------------------------

def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def _retry_after(exc: SlackApiError) -> float | None:
    value = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    return parse_retry_after(value)


def to_delivery_error(exc: SlackApiError, method: str, channel_id: str) -> DeliveryError:
    """What a Web API error means for a delivery: retry (when), give up on the channel, or neither."""
    code = _error_code(exc)
    status = exc.response.status_code
    if status == 429 or code == "ratelimited":
        # Certainly refused: a retry_after (1 s when Slack sent none) tells the dispatcher so.
        retry_after = _retry_after(exc)
        return DeliveryError(f"{method}: rate limited", retryable=True,
                             retry_after=1.0 if retry_after is None else retry_after)
    if status >= 500 or code in SERVER_ERRORS:
        # Maybe posted anyway: no retry_after, so the dispatcher backs off and checks the history first.
        return DeliveryError(f"{method}: Slack error {code or f'HTTP {status}'}", retryable=True)
    if code in MESSAGE_GONE_ERRORS:
        return DeliveryError(f"{method}: {code} (the message was deleted)", message_gone=True)
    if code in CHANNEL_GONE_ERRORS:
        return DeliveryError(f"{method}: {code} (channel {channel_id}: gone, archived, or the bot is not a "
                             f"member; invite the bot with /invite @leaderwatch)", retryable=False,
                             channel_gone=True)
    if code in INSTALL_ERRORS:
        hint = ("add the scope in slack/manifest.yml and reinstall the app" if code == "missing_scope"
                else "check SLACK_BOT_TOKEN; a public app: the workspace must install the app again")
        logger.error("Slack: %s failed with %s: %s", method, code, hint)
        return DeliveryError(f"{method}: {code} ({hint})", retryable=True, retry_after=INSTALL_RETRY_SECONDS)
    return DeliveryError(f"{method}: {code or f'HTTP {status}'}", retryable=False)


class SlackSender:
    """Delivers alerts with chat.postMessage, each tagged with its delivery key in message metadata;
    follow-ups in the thread of their story's first alert (`thread_ts`), which chat.update edits."""

    platform = PLATFORM
    calls: Mapping[str, tuple[str, ...]] = {
        "post": ("chat.postMessage",), "reply": ("conversations.replies", "chat.postMessage"),
        "edit": ("chat.update",), "image": ("files.getUploadURLExternal", "files.completeUploadExternal"),
        "check": ("conversations.history",)}
    """The Web API methods of each delivery step, which the dispatcher paces by their tiers."""

    def __init__(self, client: AsyncWebClient, *, min_interval: float = MIN_POST_INTERVAL_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clients: WorkspaceClients | None = None) -> None:
        self.client, self.min_interval, self.monotonic, self.sleep = client, min_interval, monotonic, sleep
        self.clients = clients
        """With many workspaces: the client of a channel's workspace (`WorkspaceClients`); else `client`."""
        self.last_post: dict[str, float] = {}
        self.threads_unreadable = False
        """conversations.replies was refused once (logged then, not at every alert)."""

    async def _pace(self, channel_id: str) -> None:
        last = self.last_post.get(channel_id)
        if last is not None:
            wait = self.min_interval - (self.monotonic() - last)
            if wait > 0:
                await self.sleep(wait)
        self.last_post[channel_id] = self.monotonic()

    def pace_scope(self, channel_id: str) -> str:
        """Whose rate limits the channel's calls count against: its workspace's, for a public app installed
        by many (Slack's limits are per workspace); "" with one token (one workspace)."""
        return self.clients.workspace_of(channel_id) if self.clients is not None else ""

    async def _client(self, channel_id: str) -> AsyncWebClient:
        """The client that may post to the channel (its workspace's token); DeliveryError when none can."""
        return await self.clients(channel_id) if self.clients is not None else self.client

    async def _post(self, channel_id: str, message: dict[str, Any], delivery_key: str,
                    thread: str | None) -> str:
        response = await (await self._client(channel_id)).chat_postMessage(
            channel=channel_id, unfurl_links=False, unfurl_media=False, thread_ts=thread or None,
            metadata={"event_type": ALERT_EVENT_TYPE, "event_payload": {"delivery_key": delivery_key}},
            **message)
        return str(response.get("ts") or "")

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        """Post one alert (in the thread of the message `thread`); its ts. DeliveryError says whether
        and when to retry, and `message_gone` when `thread`'s message was deleted (Slack would keep a
        reply to a deleted message hidden in an orphan thread, so the parent is looked up first)."""
        await self._pace(channel_id)
        try:
            if thread:
                await self._check_parent(channel_id, thread)
            try:
                ts = await self._post(channel_id, to_message(reply), delivery_key, thread)
            except SlackApiError as exc:
                if _error_code(exc) not in MESSAGE_ERRORS:
                    raise
                # Our Block Kit was refused: the alert still goes out, as plain text.
                logger.error("Slack refused the blocks of alert %s (%s); sending it as plain text",
                             delivery_key, _error_code(exc))
                ts = await self._post(channel_id, {"text": fallback_text(reply)}, delivery_key, thread)
        except SlackApiError as exc:
            raise to_delivery_error(exc, "chat.postMessage", channel_id) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"chat.postMessage: network error {type(exc).__name__}", retryable=True,
                                retry_after=None) from exc
        if reply.image is not None and not thread:
            await self._post_image(channel_id, reply, delivery_key)
        return ts

    async def _check_parent(self, channel_id: str, thread: str) -> None:
        """DeliveryError(message_gone) unless `thread` is a message of the channel that was not deleted
        (a deleted parent with replies stays as a tombstone). When Slack will not show the bot threads,
        the reply goes out unchecked: better in a possibly orphaned thread than never."""
        try:
            client = await self._client(channel_id)
            page = await client.conversations_replies(channel=channel_id, ts=thread, limit=1)
        except SlackApiError as exc:
            if _error_code(exc) not in THREAD_UNREADABLE_ERRORS:
                raise
            self._cannot_read_threads(_error_code(exc))
            return
        first = (page.get("messages") or [{}])[0]
        if first.get("ts") != thread or first.get("subtype") == "tombstone":
            raise DeliveryError(f"conversations.replies: message {thread} was deleted", message_gone=True)

    def _cannot_read_threads(self, code: str) -> None:
        if self.threads_unreadable:
            return
        self.threads_unreadable = True
        logger.error("Slack: conversations.replies answers %s: replies go in their threads without checking "
                     "that the alert is still there, and after a crash a reply already posted may be posted "
                     "again. Give the app the channels:history and groups:history scopes "
                     "(slack/manifest.yml) and reinstall it", code)

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        """Rewrite an alert in place (chat.update, the same blocks and buttons); DeliveryError as `send`."""
        await self._pace(channel_id)
        try:
            try:
                await (await self._client(channel_id)).chat_update(channel=channel_id, ts=message_ref,
                                                           **to_message(reply))
            except SlackApiError as exc:
                if _error_code(exc) not in MESSAGE_ERRORS:
                    raise
                logger.error("Slack refused the blocks of the edit of alert %s (%s); editing it as plain "
                             "text", delivery_key, _error_code(exc))
                await (await self._client(channel_id)).chat_update(channel=channel_id, ts=message_ref,
                                                           text=fallback_text(reply), blocks=[])
        except SlackApiError as exc:
            raise to_delivery_error(exc, "chat.update", channel_id) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"chat.update: network error {type(exc).__name__}", retryable=True) from exc

    async def _post_image(self, channel_id: str, reply: Reply, delivery_key: str) -> None:
        """The alert's chart, uploaded after it. The alert is delivered already: a failure only loses
        the chart (logged), it never sends the alert again."""
        await self._pace(channel_id)
        try:
            await upload_image(await self._client(channel_id), channel_id, reply)
        except DeliveryError as exc:
            logger.warning("Slack: the chart of alert %s was not uploaded: %s", delivery_key, exc.reason)
        except SlackApiError as exc:
            logger.warning("Slack: the chart of alert %s was not uploaded: %s", delivery_key,
                           _error_code(exc) or f"HTTP {exc.response.status_code}")
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Slack: the chart of alert %s was not uploaded: %s", delivery_key,
                           type(exc).__name__)

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        """The ts of this alert if the channel (or `thread`'s thread) already shows it (a crash after
        Slack accepted it), else None. A thread Slack will not show the bot counts as not showing it."""
        oldest = f"{since.timestamp():.6f}"
        cursor: str | None = None
        method = "conversations.replies" if thread else "conversations.history"
        try:
            client = await self._client(channel_id)
            for _ in range(HISTORY_PAGES):
                kwargs: dict[str, Any] = {"channel": channel_id, "oldest": oldest, "limit": 200,
                                          "include_all_metadata": True}
                if cursor:
                    kwargs["cursor"] = cursor
                if thread:
                    page = await client.conversations_replies(ts=thread, **kwargs)
                else:
                    page = await client.conversations_history(**kwargs)
                for message in page.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (metadata.get("event_type") == ALERT_EVENT_TYPE
                            and payload.get("delivery_key") == delivery_key):
                        return str(message.get("ts") or "")
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
            return None
        except SlackApiError as exc:
            if thread and _error_code(exc) in THREAD_UNREADABLE_ERRORS:
                self._cannot_read_threads(_error_code(exc))
                return None
            raise to_delivery_error(exc, method, channel_id) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{method}: network error {type(exc).__name__}",
                                retryable=True, retry_after=None) from exc


# -- the service ---------------------------------------------------------------------------------------

def token_cipher(settings: Settings) -> TokenCipher | None:
    """The cipher of the installed workspaces' tokens for a public app (OAuth), else None; ConfigError when
    LEADERWATCH_SECRET_KEY is missing or unusable."""
    if not settings.slack_oauth:
        return None
    try:
        return TokenCipher(settings.secret_key or "")
    except InstallationError as exc:
        raise ConfigError(str(exc)) from None


class SlackService:
    """The Slack side of the running service: the Bolt app, its connection, and the alert sender.

    Socket Mode (default) connects out to Slack; HTTP mode only needs `routes()` mounted on the one
    HTTP server. A token Slack rejects is logged, naming the variable, and Slack stays off: the
    rest of the service keeps running.
    """

    def __init__(self, settings: Settings, ctx: CommandContext, *, budget: float = ACK_BUDGET_SECONDS,
                 min_post_interval: float = MIN_POST_INTERVAL_SECONDS,
                 connect_timeout: float = 10.0) -> None:
        if settings.slack_mode == "socket" and not settings.slack_app_token:
            raise ConfigError(f"SLACK_APP_TOKEN: required in Socket Mode ({HOW_TO_GET['SLACK_APP_TOKEN']}); "
                              "or set LEADERWATCH_SLACK_MODE=http")
        if settings.slack_mode == "http" and settings.http_port is None:
            raise ConfigError("LEADERWATCH_HTTP_PORT: required when LEADERWATCH_SLACK_MODE=http (Slack posts "
                              "to /slack/events on that port)")
        self.settings = settings
        self.workspace = Workspace()
        self.workspaces = Workspaces(ctx.db, ctx.clock, token_cipher(settings))
        self.app = build_slack_app(settings, ctx, budget=budget, workspace=self.workspace,
                                   workspaces=self.workspaces)
        clients = None
        if self.workspaces.multi:
            def alert_client(token: str) -> AsyncWebClient:
                return web_client(settings, retry_rate_limits=False, token=token)

            clients = WorkspaceClients(self.workspaces, alert_client)
        self.sender = SlackSender(web_client(settings, retry_rate_limits=False),
                                  min_interval=min_post_interval, clients=clients)
        self.connect_timeout = connect_timeout
        self.handler: AsyncSocketModeHandler | None = None
        self.bot_user_id: str | None = None
        self._connecting: asyncio.Future[None] | None = None

    def routes(self) -> list[web.RouteDef]:
        """The routes to mount on the HTTP server: `/slack/events` in HTTP mode, none in Socket Mode; a
        public app's `/slack/install` and `/slack/oauth_redirect` in both."""
        return slack_routes(self.app, events=self.settings.slack_mode == "http")

    async def start(self) -> bool:
        """Check the token (a public app: count its workspaces) and, in Socket Mode, connect; False (logged)
        when Slack refused us."""
        if self.workspaces.multi:
            installed = installations.installed_workspaces(self.workspaces.db, PLATFORM)
            logger.info("Slack: public app (OAuth), installed in %d workspace(s); more install at %s",
                        len(installed), INSTALL_PATH)
        elif not await self._sign_in():
            return False
        if self.settings.slack_mode != "socket":
            return True
        return await self._connect()

    async def _sign_in(self) -> bool:
        """auth.test with SLACK_BOT_TOKEN: the bot's id and the workspace's URL; False (logged) if refused."""
        try:
            auth = await self.app.client.auth_test()
        except SlackApiError as exc:
            logger.error("Slack: SLACK_BOT_TOKEN was rejected by auth.test (%s); Slack stays off until the "
                         "token is fixed (%s)", _error_code(exc) or f"HTTP {exc.response.status_code}",
                         HOW_TO_GET["SLACK_BOT_TOKEN"])
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.error("Slack: cannot reach the Slack Web API to check SLACK_BOT_TOKEN (%r); Slack stays "
                         "off", exc)
            return False
        self.bot_user_id = str(auth.get("user_id") or "")
        self.workspace.url = str(auth.get("url") or "")
        logger.info("Slack: signed in as %s (%s) in %s", auth.get("user"), self.bot_user_id, auth.get("team"))
        return True

    async def _connect(self) -> bool:
        """Open the Socket Mode connection; False (logged) when the app token is refused."""
        handler = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
        try:
            # Asked here, once, so a bad app token is reported instead of retried forever by the client.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            await handler.close_async()  # type: ignore[no-untyped-call]
            logger.error("Slack: SLACK_APP_TOKEN was rejected by apps.connections.open (%s); Slack stays off "
                         "(%s)", _error_code(exc) or f"HTTP {exc.response.status_code}",
                         HOW_TO_GET["SLACK_APP_TOKEN"])
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            await handler.close_async()  # type: ignore[no-untyped-call]
            logger.error("Slack: cannot open a Socket Mode connection (%r); Slack stays off", exc)
            return False
        self.handler = handler
        self._connecting = asyncio.ensure_future(handler.connect_async())  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(asyncio.shield(self._connecting), self.connect_timeout)
        except TimeoutError:
            logger.warning("Slack: Socket Mode is still connecting after %.0fs; it keeps trying",
                           self.connect_timeout)
        return True

    async def stop(self) -> None:
        """Close the Socket Mode connection (HTTP mode has nothing to close)."""
        if self.handler is not None:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
            self.handler = None
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        self._connecting = None
