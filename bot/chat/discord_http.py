"""Discord through its Interactions Endpoint URL: `POST /discord/interactions` on the one HTTP server.

The alternative to the gateway (LEADERWATCH_DISCORD_MODE=http): Discord posts each interaction, signed
with the application's Ed25519 key (`X-Signature-Ed25519` over `X-Signature-Timestamp` + body); a bad,
missing or stale signature gets 401 and nothing runs. A PING gets a PONG; `/leaderwatch ...` and
`/leaderwatch-admin ...` become the same `Invocation` the gateway adapter builds and go through the
same `dispatch`; a click on an alert's button (`lw:...`) goes through the same `question` / `press`.

The answer is the HTTP response when it is ready within the budget (type 4), else a deferral (type 5)
followed by an edit of `@original` through the webhook REST API (`LEADERWATCH_DISCORD_API_URL`), as is
any answer with a chart (a file goes in a multipart request, not in the response). The embeds come from
the gateway adapter's renderer (`discord_bot.to_payloads`), passed in by the composition root: this
module does not import discord.py, and nothing about a reply's looks is decided here.

Managers are members whose permissions in the channel (`member.permissions`, resolved by Discord)
include Manage Channels, as the gateway adapter checks; Administrator implies it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import httpx
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from leaderwatch.alerts.formatting import Reply, clean_text
from leaderwatch.bot.chat.common import Names, Option, command_line, options_of
from leaderwatch.bot.chat.discord_api import (
    ACK_BUDGET_SECONDS,
    ADMIN_GROUP,
    CHART_FILE,
    EPHEMERAL_FLAG,
    GROUP,
    PLATFORM,
)
from leaderwatch.bot.commands import COMMANDS, Command, CommandContext, Invocation, apology, dispatch
from leaderwatch.bot.commands.actions import Press, configures, press, question

logger = logging.getLogger(__name__)

PATH = "/discord/interactions"
API_URL = "https://discord.com/api/v10"
MAX_AGE_SECONDS = 300
"""A signed request older (or newer) than this is refused: a replayed capture."""
MAX_CHOICES = 25
MAX_CHOICE = 100

# Interaction types in, callback types out (https://discord.com/developers/docs/interactions/receiving-and-responding).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 1, 2, 3, 4
PONG, CHANNEL_MESSAGE, DEFERRED_MESSAGE, AUTOCOMPLETE_RESULT = 1, 4, 5, 8
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
THREAD_TYPES = frozenset({10, 11, 12})

Render = Callable[[Reply], list[dict[str, Any]]]
"""A Reply as the JSON bodies of its messages (`discord_bot.to_payloads`)."""


# -- signatures ------------------------------------------------------------------------------------------

def public_key(hex_key: str) -> Ed25519PublicKey:
    """The application's public key from its hex form (Developer Portal > General Information)."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))


def is_signed(key: Ed25519PublicKey, signature: str | None, timestamp: str | None, body: bytes, now: float,
              max_age: float = MAX_AGE_SECONDS) -> bool:
    """Whether Discord signed `timestamp + body` with `key` within `max_age` seconds of `now`."""
    if not signature or not timestamp:
        return False
    try:
        sent = int(timestamp)
        key.verify(bytes.fromhex(signature), timestamp.encode() + body)
    except (ValueError, InvalidSignature):
        return False
    return abs(now - sent) <= max_age


# -- payloads to neutral objects ----------------------------------------------------------------------------

def can_configure(payload: Mapping[str, Any]) -> bool:
    """Manage Channels (or Administrator) in this channel; never in a DM (there is no member)."""
    member = payload.get("member") or {}
    try:
        permissions = int(member.get("permissions") or 0)
    except ValueError:
        return False
    return bool(permissions & (MANAGE_CHANNELS | ADMINISTRATOR))


def _user(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return (payload.get("member") or {}).get("user") or payload.get("user") or {}


def find_command(group: str, subcommand: str) -> Command | None:
    """The command a `/group subcommand` names (`chart-model` is `chart model`), in its right group."""
    for command in COMMANDS.values():
        if command.name.replace(" ", "-") == subcommand and group == (ADMIN_GROUP if command.configures
                                                                     else GROUP):
            return command
    return None


def _subcommand(payload: Mapping[str, Any]) -> tuple[Command | None, list[Mapping[str, Any]]]:
    data = payload.get("data") or {}
    sub: Mapping[str, Any] = next(iter(data.get("options") or []), {})
    return find_command(str(data.get("name", "")), str(sub.get("name", ""))), list(sub.get("options") or [])


def to_invocation(payload: Mapping[str, Any]) -> tuple[Command, Invocation] | None:
    """A slash command as the neutral Invocation (its options rebuilt into the command line Slack users
    type), or None for a command this build does not have (registered by an older one)."""
    command, given = _subcommand(payload)
    if command is None:
        return None
    options = options_of(command.usage, command.name)
    text = command_line(command.name, options, {o["name"]: o.get("value") for o in given})
    user = _user(payload)
    return command, Invocation(platform=PLATFORM, channel_id=str(payload.get("channel_id") or ""),
                               user_id=str(user.get("id", "")), user_name=str(user.get("username", "")),
                               text=text, can_configure=can_configure(payload), is_bot=bool(user.get("bot")))


def to_press(payload: Mapping[str, Any]) -> Press:
    """A click as the neutral Press; in a story's thread, about the thread's parent channel."""
    data = payload.get("data") or {}
    channel = payload.get("channel") or {}
    channel_id = payload.get("channel_id") or ""
    if channel.get("type") in THREAD_TYPES and channel.get("parent_id"):
        channel_id = channel["parent_id"]
    values = data.get("values") or []
    user = _user(payload)
    return Press(PLATFORM, str(channel_id), str(user.get("id", "")), str(user.get("username", "")),
                 str(data.get("custom_id", "")), str(values[0]) if values else "", can_configure(payload))


def _focused(given: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((o for o in given if o.get("focused")), None)


# -- the endpoint ----------------------------------------------------------------------------------------

class DiscordInteractions:
    """Answers Discord's signed interaction requests; follows deferred ones up over REST.

    `client` is the service's one httpx client (webhook calls need no bot token: the interaction's token
    is in the URL). `budget`: seconds an answer may take before it is deferred; 0 defers every one.
    """

    def __init__(self, ctx: CommandContext, public_key_hex: str, client: httpx.AsyncClient, render: Render, *,
                 api_url: str | None = None, application_id: str | None = None, names: Names | None = None,
                 budget: float = ACK_BUDGET_SECONDS, max_age: float = MAX_AGE_SECONDS) -> None:
        self.ctx, self.client, self.render = ctx, client, render
        self.key = public_key(public_key_hex)
        self.api_url = (api_url or API_URL).rstrip("/")
        self.application_id, self.budget, self.max_age = application_id, budget, max_age
        self.names = names or Names(ctx)
        self.pending: set[asyncio.Task[Any]] = set()

    def routes(self) -> list[web.RouteDef]:
        """The route to add to the one HTTP server (`build_web_app(extra_routes=...)`)."""
        return [web.post(PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Verify, answer; the follow-up (if any) starts once the response is sent."""
        body = await request.read()
        now = self.ctx.clock().timestamp()
        if not is_signed(self.key, request.headers.get("X-Signature-Ed25519"),
                         request.headers.get("X-Signature-Timestamp"), body, now, self.max_age):
            logger.warning("Discord: refused an interaction with a bad, missing or stale signature")
            return web.json_response({"error": "invalid request signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        if self.application_id and str(payload.get("application_id")) != self.application_id:
            logger.warning("Discord: refused an interaction for application %s (DISCORD_APPLICATION_ID: %s)",
                           payload.get("application_id"), self.application_id)
            return web.json_response({"error": "unknown application"}, status=401)
        try:
            answer, later = await self.answer(payload)
        except Exception as exc:  # noqa: BLE001 - never a stack trace, never Discord's "interaction failed"
            answer, later = self._first(self.apology(f"interaction {payload.get('id')}", exc)), None
        response = web.json_response(answer)
        await response.prepare(request)
        await response.write_eof()
        if later is not None:
            self._spawn(later)
        return response

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def close(self) -> None:
        """Let follow-ups under way finish (at shutdown)."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def answer(self, payload: Mapping[str, Any]
                     ) -> tuple[dict[str, Any], Coroutine[Any, Any, None] | None]:
        """The HTTP answer to one verified interaction, and what to do after it was sent (or None)."""
        kind = payload.get("type")
        if kind == PING:
            return {"type": PONG}, None
        if kind == AUTOCOMPLETE:
            return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": self.complete(payload)}}, None
        if kind == APPLICATION_COMMAND:
            found = to_invocation(payload)
            if found is None:
                data = payload.get("data") or {}
                return await self.respond(payload, self._unknown(data), "an unknown command")
            command, inv = found
            group = ADMIN_GROUP if command.configures else GROUP
            return await self.respond(payload, dispatch(self.ctx, inv), f"/{group} {inv.text}")
        if kind == MESSAGE_COMPONENT:
            click = to_press(payload)
            return await self.respond(payload, self._press(click), f"button {click.action_id}", private=True)
        logger.warning("Discord: interaction of unknown type %r answered with an apology", kind)
        return self._first(self.apology(f"interaction type {kind!r}", ValueError(kind))), None

    async def _unknown(self, data: Mapping[str, Any]) -> Reply:
        # Slack's wording for an unknown command, via the command layer: `dispatch` says what to do.
        sub: Mapping[str, Any] = next(iter(data.get("options") or []), {})
        return await dispatch(self.ctx, Invocation(PLATFORM, "", "", "", str(sub.get("name", "?"))))

    async def _press(self, click: Press) -> Reply:
        """Configuration buttons ask members without Manage Channels nothing: `press` refuses them (as the
        gateway's `may_click`); anyone else gets the button's question first, if it asks one."""
        if not click.can_configure and configures(click.action_id):
            return await press(self.ctx, click)
        return question(self.ctx, click) or await press(self.ctx, click)

    async def respond(self, payload: Mapping[str, Any], work: Coroutine[Any, Any, Reply], what: str, *,
                      private: bool = False) -> tuple[dict[str, Any], Coroutine[Any, Any, None] | None]:
        """`work`'s reply in the response when ready within the budget (and chartless), else a deferral
        (private when `private`) and the reply as an edit of it."""
        task = asyncio.create_task(self._safely(work, what))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        if self.budget > 0:
            await asyncio.wait({task}, timeout=self.budget)
        if task.done() and task.result().image is None:
            reply = task.result()
            first, *rest = self.render(reply)
            later = self._follow_ups(payload, rest) if rest else None
            return {"type": CHANNEL_MESSAGE, "data": first}, later
        defer: dict[str, Any] = {"type": DEFERRED_MESSAGE}
        if private:
            defer["data"] = {"flags": EPHEMERAL_FLAG}
        return defer, self._answer_late(payload, task, private=private)

    async def _safely(self, work: Coroutine[Any, Any, Reply], what: str) -> Reply:
        try:
            return await work
        except Exception as exc:  # noqa: BLE001 - `dispatch` never raises; a click's own look-ups might
            return self.apology(what, exc)

    def _first(self, reply: Reply) -> dict[str, Any]:
        return {"type": CHANNEL_MESSAGE, "data": self.render(reply)[0]}

    @staticmethod
    def apology(what: str, error: BaseException) -> Reply:
        """Log a failure with its traceback under a new error id; the private answer telling that id."""
        return apology(f"Discord: {what}", error, logger)

    # -- after the response --------------------------------------------------------------------------

    def _webhook(self, payload: Mapping[str, Any]) -> str:
        app_id = self.application_id or str(payload.get("application_id", ""))
        return f"{self.api_url}/webhooks/{app_id}/{payload.get('token', '')}"

    async def _answer_late(self, payload: Mapping[str, Any], task: asyncio.Task[Reply], *,
                           private: bool) -> None:
        """The deferred "thinking" message becomes the answer. A private answer after a public deferral
        (help, errors) replaces it with an ephemeral follow-up, so it never shows to the channel."""
        reply = await task
        first, *rest = self.render(reply)
        private_answer = bool(first.get("flags", 0) & EPHEMERAL_FLAG)
        try:
            if private_answer and not private:
                await self._call("DELETE", f"{self._webhook(payload)}/messages/@original")
                await self._call("POST", self._webhook(payload), first, reply.image)
            else:
                edit = {k: v for k, v in first.items() if k != "flags"}  # fixed when deferring
                await self._call("PATCH", f"{self._webhook(payload)}/messages/@original", edit, reply.image)
            for body in rest:
                await self._call("POST", self._webhook(payload), body)
        except (httpx.HTTPError, DiscordCallError) as exc:
            logger.warning("Discord: could not answer interaction %s: %s", payload.get("id"), exc)

    async def _follow_ups(self, payload: Mapping[str, Any], bodies: Sequence[dict[str, Any]]) -> None:
        """The further messages of a long answer, after the response."""
        try:
            for body in bodies:
                await self._call("POST", self._webhook(payload), body)
        except (httpx.HTTPError, DiscordCallError) as exc:
            logger.warning("Discord: could not send the rest of answer %s: %s", payload.get("id"), exc)

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None,
                    image: bytes | None = None) -> None:
        """One webhook call; the chart (given, and listed in the body) as `files[0]` of a multipart body."""
        if image is not None and body is not None and body.get("attachments"):
            response = await self.client.request(
                method, url, data={"payload_json": json.dumps(body)},
                files={"files[0]": (CHART_FILE, image, "image/png")})
        elif body is not None:
            response = await self.client.request(method, url, json=body)
        else:
            response = await self.client.request(method, url)
        if response.status_code >= 400:
            raise DiscordCallError(f"{method} webhook: HTTP {response.status_code} {response.text[:200]}")

    # -- autocomplete ------------------------------------------------------------------------------------

    def complete(self, payload: Mapping[str, Any]) -> list[dict[str, str]]:
        """At most 25 names for the option being typed, best first; none when anything fails."""
        command, given = _subcommand(payload)
        focused = _focused(given)
        if command is None or focused is None:
            return []
        option: Option | None = next((o for o in options_of(command.usage, command.name)
                                      if o.name == focused.get("name")), None)
        if option is None:
            return []
        try:
            found = self.names.suggest(option, str(focused.get("value") or ""), PLATFORM,
                                       str(payload.get("channel_id") or ""), MAX_CHOICES)
        except Exception:  # noqa: BLE001 - an empty list beats an error in the user's input box
            logger.exception("Discord: autocomplete for %s failed", option.name)
            return []
        return [{"name": clean_text(v), "value": v} for v in found
                if 0 < len(v) <= MAX_CHOICE and clean_text(v).strip()][:MAX_CHOICES]


class DiscordCallError(Exception):
    """A webhook call Discord refused (the interaction's token expired after 15 minutes, a bad body)."""
