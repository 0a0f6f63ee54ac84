"""The Slack adapter: `/leaderwatch` through slack_bolt (Socket Mode or HTTP), Block Kit, alert delivery.

Three jobs, as every adapter: a slash command payload becomes an `Invocation`, `dispatch` answers it,
and the neutral `Reply` becomes Block Kit, its chart (if any) a file uploaded to the channel after it.
Slack's limits (3 s to ack, 50 blocks, 3,000 characters a text, 10 fields a section) live here.
`SlackSender` delivers alerts for the `Dispatcher`; it never retries by itself, so a 429 or a lost
connection is retried once by the dispatcher, which honours Retry-After and checks the channel's
history (message metadata) before posting again.

slack_bolt and slack_sdk are imported nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from leaderwatch.alerts.formatting import Reply
from leaderwatch.bot.chat.common import clip, image_filename, split_text, table_lines
from leaderwatch.bot.commands import COMMANDS, CommandContext, Invocation, dispatch, parse_line
from leaderwatch.bot.commands.messages import INTERNAL_ERROR
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.bot.settings import HOW_TO_GET, ConfigError, Settings
from leaderwatch.sources.http import parse_retry_after

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
MIN_POST_INTERVAL_SECONDS = 1.0
"""Slack accepts about one message per second per channel."""
HISTORY_PAGES = 10

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK = 3000

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
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_blocks"})
"""The message itself was refused: sent again as plain text only."""


# -- Block Kit ---------------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control (`<!channel>` stays inert)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


def to_blocks(reply: Reply) -> list[dict[str, Any]]:
    """A Reply as Block Kit within Slack's limits: long parts split, too many blocks truncated."""
    head: list[dict[str, Any]] = []
    if reply.title:
        head.append({"type": "header",
                     "text": {"type": "plain_text", "text": clip(reply.title, MAX_HEADER), "emoji": True}})
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
    title = reply.title or "Chart"
    await client.files_upload_v2(channel=channel_id, file=reply.image, filename=image_filename(reply),
                                 title=clip(title, MAX_HEADER), alt_txt=clip(title, 1000),
                                 initial_comment=clip(escape(title), MAX_TEXT))


# -- the slash command ---------------------------------------------------------------------------------

@dataclass
class AdminCheck:
    """Who may change a channel's configuration: workspace admins and owners, or configured users.

    `users.info` answers are cached for a few minutes so a burst of commands costs one call.
    """

    client: AsyncWebClient
    configured: frozenset[str] = frozenset()
    ttl: float = ADMIN_CACHE_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    cache: dict[str, tuple[float, bool]] = field(default_factory=dict)

    async def can_configure(self, user_id: str) -> bool:
        """True for an admin, an owner or a configured user; SlackApiError when Slack cannot tell."""
        if user_id in self.configured:
            return True
        now = self.monotonic()
        cached = self.cache.get(user_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        response = await self.client.users_info(user=user_id)
        user = response.get("user") or {}
        allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self.cache[user_id] = (now, allowed)
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


class SlashCommand:
    """The `/leaderwatch` listener: answer within the ack when quick, else ack and answer later."""

    def __init__(self, ctx: CommandContext, admins: AdminCheck, budget: float = ACK_BUDGET_SECONDS) -> None:
        self.ctx, self.admins, self.budget = ctx, admins, budget
        self.pending: set[asyncio.Task[Reply]] = set()

    async def answer(self, command: Mapping[str, Any]) -> Reply:
        """The Reply to one slash command; never raises."""
        text = str(command.get("text", ""))
        try:
            can_configure = False
            if is_configuration(text):
                try:
                    can_configure = await self.admins.can_configure(str(command.get("user_id", "")))
                except SlackApiError as exc:
                    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
                    if error == "missing_scope":
                        logger.error("Slack: users.info needs the users:read scope (see slack/manifest.yml)")
                    logger.warning("Slack: users.info for %s failed: %s", command.get("user_id"), error)
                    return Reply(text=ADMIN_CHECK_FAILED.format(error=error), ephemeral=True, error=True)
            return await dispatch(self.ctx, to_invocation(command, can_configure))
        except Exception:  # a network error in users.info, a bug here: logged, never shown
            error_id = secrets.token_hex(4)
            logger.exception("Slack command failed [error id %s]: channel=%s text=%r", error_id,
                             command.get("channel_id"), text)
            return Reply(text=INTERNAL_ERROR.format(error_id=error_id), ephemeral=True, error=True)

    async def __call__(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond,
                       client: AsyncWebClient) -> None:
        """Bolt listener (arguments injected by name). A chart follows the answer as a file upload."""
        work = asyncio.create_task(self.answer(command))
        self.pending.add(work)
        work.add_done_callback(self.pending.discard)
        done, _ = await asyncio.wait({work}, timeout=self.budget)
        if work in done:
            reply = without_private_image(work.result())
            await ack(**to_message(reply), response_type=response_type(reply))
        else:
            await ack(text=WORKING, response_type="ephemeral")
            reply = without_private_image(await work)
            await self.respond(respond, to_message(reply), response_type(reply))
        if reply.image is not None:
            await self.post_image(client, str(command.get("channel_id", "")), reply, respond)

    async def respond(self, respond: AsyncRespond, message: dict[str, Any], kind: str) -> None:
        """Post through response_url (an answer after the ack); failures are logged."""
        try:
            result = await respond(**message, response_type=kind)
            if result.status_code != 200:
                logger.warning("Slack: response_url refused the late answer: HTTP %d %s", result.status_code,
                               result.body[:200])
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # ValueError: no response_url
            logger.warning("Slack: could not post the late answer to response_url: %r", exc)

    async def post_image(self, client: AsyncWebClient, channel_id: str, reply: Reply,
                         respond: AsyncRespond) -> None:
        """Upload the answer's chart to the channel; when that fails, tell the asker why (only them)."""
        try:
            await upload_image(client, channel_id, reply)
            return
        except SlackApiError as exc:
            error = _error_code(exc) or f"HTTP {exc.response.status_code}"
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
        logger.warning("Slack: could not upload a chart to channel %s: %s", channel_id, error)
        text = CHART_FAILED.format(error=error, hint=CHART_HINTS.get(error, CHART_RETRY))
        await self.respond(respond, {"text": text}, "ephemeral")


async def drop_bot_events(body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
    """Global middleware: events sent by bots (ours included) go no further."""
    event = body.get("event") or {}
    if isinstance(event, dict) and (event.get("bot_id") or event.get("subtype") == "bot_message"):
        return BoltResponse(status=200, body="")
    await next_()
    return None


def web_client(settings: Settings, *, retry_rate_limits: bool) -> AsyncWebClient:
    """A Web API client with the bot token, pointed at `LEADERWATCH_SLACK_API_URL` when set.

    `retry_rate_limits`: for the command side (users.info), a 429 is waited out in place. The alert
    client retries nothing (not even a dropped connection, which may hide a message Slack accepted):
    the Dispatcher retries with backoff and checks the channel's history first.
    """
    handlers = ([AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
                if retry_rate_limits else [])
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token, "retry_handlers": handlers}
    if settings.slack_api_url:
        base = settings.slack_api_url
        kwargs["base_url"] = base if base.endswith("/") else base + "/"  # URLs are built with urljoin
    return AsyncWebClient(**kwargs)


def build_slack_app(settings: Settings, ctx: CommandContext, *, budget: float = ACK_BUDGET_SECONDS,
                    admin_cache_seconds: float = ADMIN_CACHE_SECONDS,
                    monotonic: Callable[[], float] = time.monotonic) -> AsyncApp:
    """The Bolt app answering `/leaderwatch` (signature verification on in HTTP mode)."""
    if not settings.slack_bot_token:
        raise ConfigError(f"SLACK_BOT_TOKEN: required for Slack ({HOW_TO_GET['SLACK_BOT_TOKEN']})")
    if settings.slack_mode == "http" and not settings.slack_signing_secret:
        raise ConfigError(f"SLACK_SIGNING_SECRET: required in HTTP mode "
                          f"({HOW_TO_GET['SLACK_SIGNING_SECRET']})")
    client = web_client(settings, retry_rate_limits=True)
    # The signing secret is passed even when empty so Bolt never falls back to the environment.
    # Not named "leaderwatch": Bolt sets the level of the logger named after the app (ours is the root
    # of every leaderwatch logger).
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret or "",
                   name="leaderwatch-slack", ignoring_self_events_enabled=True)
    admins = AdminCheck(client, frozenset(settings.slack_admins), admin_cache_seconds, monotonic)
    app.middleware(drop_bot_events)
    app.command(COMMAND)(SlashCommand(ctx, admins, budget))
    return app


def slack_routes(app: AsyncApp, path: str = EVENTS_PATH) -> list[web.RouteDef]:
    """`POST /slack/events` for the one aiohttp server (HTTP mode)."""
    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    return [web.post(path, events)]


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
                else "check SLACK_BOT_TOKEN")
        logger.error("Slack: %s failed with %s: %s", method, code, hint)
        return DeliveryError(f"{method}: {code} ({hint})", retryable=True, retry_after=INSTALL_RETRY_SECONDS)
    return DeliveryError(f"{method}: {code or f'HTTP {status}'}", retryable=False)


class SlackSender:
    """Delivers alerts with chat.postMessage, each tagged with its delivery key in message metadata;
    follow-ups in the thread of their story's first alert (`thread_ts`), which chat.update edits."""

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient, *, min_interval: float = MIN_POST_INTERVAL_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client, self.min_interval, self.monotonic, self.sleep = client, min_interval, monotonic, sleep
        self.last_post: dict[str, float] = {}

    async def _pace(self, channel_id: str) -> None:
        last = self.last_post.get(channel_id)
        if last is not None:
            wait = self.min_interval - (self.monotonic() - last)
            if wait > 0:
                await self.sleep(wait)
        self.last_post[channel_id] = self.monotonic()

    async def _post(self, channel_id: str, message: dict[str, Any], delivery_key: str,
                    thread: str | None) -> str:
        response = await self.client.chat_postMessage(
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
        (a deleted parent with replies stays as a tombstone)."""
        page = await self.client.conversations_replies(channel=channel_id, ts=thread, limit=1)
        first = (page.get("messages") or [{}])[0]
        if first.get("ts") != thread or first.get("subtype") == "tombstone":
            raise DeliveryError(f"conversations.replies: message {thread} was deleted", message_gone=True)

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        """Rewrite an alert in place (chat.update, the same blocks and buttons); DeliveryError as `send`."""
        await self._pace(channel_id)
        try:
            try:
                await self.client.chat_update(channel=channel_id, ts=message_ref, **to_message(reply))
            except SlackApiError as exc:
                if _error_code(exc) not in MESSAGE_ERRORS:
                    raise
                logger.error("Slack refused the blocks of the edit of alert %s (%s); editing it as plain "
                             "text", delivery_key, _error_code(exc))
                await self.client.chat_update(channel=channel_id, ts=message_ref, text=fallback_text(reply),
                                              blocks=[])
        except SlackApiError as exc:
            raise to_delivery_error(exc, "chat.update", channel_id) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"chat.update: network error {type(exc).__name__}", retryable=True) from exc

    async def _post_image(self, channel_id: str, reply: Reply, delivery_key: str) -> None:
        """The alert's chart, uploaded after it. The alert is delivered already: a failure only loses
        the chart (logged), it never sends the alert again."""
        await self._pace(channel_id)
        try:
            await upload_image(self.client, channel_id, reply)
        except SlackApiError as exc:
            logger.warning("Slack: the chart of alert %s was not uploaded: %s", delivery_key,
                           _error_code(exc) or f"HTTP {exc.response.status_code}")
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Slack: the chart of alert %s was not uploaded: %s", delivery_key,
                           type(exc).__name__)

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        """The ts of this alert if the channel (or `thread`'s thread) already shows it (a crash after
        Slack accepted it), else None."""
        oldest = f"{since.timestamp():.6f}"
        cursor: str | None = None
        method = "conversations.replies" if thread else "conversations.history"
        try:
            for _ in range(HISTORY_PAGES):
                kwargs: dict[str, Any] = {"channel": channel_id, "oldest": oldest, "limit": 200,
                                          "include_all_metadata": True}
                if cursor:
                    kwargs["cursor"] = cursor
                if thread:
                    page = await self.client.conversations_replies(ts=thread, **kwargs)
                else:
                    page = await self.client.conversations_history(**kwargs)
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
            raise to_delivery_error(exc, method, channel_id) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"conversations.history: network error {type(exc).__name__}",
                                retryable=True, retry_after=None) from exc


# -- the service ---------------------------------------------------------------------------------------

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
        self.app = build_slack_app(settings, ctx, budget=budget)
        self.sender = SlackSender(web_client(settings, retry_rate_limits=False),
                                  min_interval=min_post_interval)
        self.connect_timeout = connect_timeout
        self.handler: AsyncSocketModeHandler | None = None
        self.bot_user_id: str | None = None
        self._connecting: asyncio.Future[None] | None = None

    def routes(self) -> list[web.RouteDef]:
        """The routes to mount on the HTTP server: `/slack/events` in HTTP mode, none in Socket Mode."""
        return slack_routes(self.app) if self.settings.slack_mode == "http" else []

    async def start(self) -> bool:
        """Check the token and, in Socket Mode, connect; False (logged) when Slack refused us."""
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
        logger.info("Slack: signed in as %s (%s) in %s", auth.get("user"), self.bot_user_id, auth.get("team"))
        if self.settings.slack_mode != "socket":
            return True
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
