"""A fake Discord on 127.0.0.1: the REST routes leaderwatch uses and a gateway that speaks JSON text frames.

The real discord.py 2.7 client logs in, syncs its commands, connects and receives `INTERACTION_CREATE`
from here; every REST request is recorded, with the files of a multipart one (`payload_json` and
`files[n]`, as discord.py sends attachments). Like Discord, the fake checks the bot token, refuses
messages over the embed limits or with malformed components (400, code 50035), answers a repeated
`enforce_nonce` nonce with the message it already has, and can be told to answer 429 (with
`Via: 1.1 google` as Discord's edge does), 5xx, Unknown Channel or Missing Access.

Messages keep their buttons and selects, can be edited (`PATCH`, or an interaction's update / `@original`
edit) and deleted (by the bot, or by a person: `delete_message`), and can start a thread whose id is the
message's id; posts in a thread are stored under that id. Clients may come and go: a new client
connecting after another closed gets the same welcome and the interactions sent from then on.

Payload shapes are those discord.py 2.7.1 reads and sends (interactions need
`attachment_size_limit`; callbacks go out with `?with_response=1` and are answered with an
`InteractionCallbackResponse`); the builders below are the fixtures the tests use.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import BodyPartReader, ClientSession, WSMsgType, web

import leaderwatch.bot.chat.discord_bot as adapter  # first: it imports discord.py without its audioop warning
from leaderwatch.bot.settings import Settings
from tests.helpers import Bucket, serve_loopback, wait_until

TOKEN = "test.bot-token.discord"
APP_ID = 900000000000000001
BOT_ID = APP_ID  # a bot user has its application's id
GUILD_ID = 910000000000000001
CHANNEL_ID = 920000000000000001
COMMAND_ID = 930000000000000001
MANAGER_ID = 940000000000000001
MEMBER_ID = 940000000000000002
DISCORD_EPOCH_MS = 1420070400000
MANAGE_CHANNELS = 1 << 4
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16)
"""View Channel, Send Messages, Embed Links, Read Message History."""
MANAGER: dict[str, Any] = {"user_id": MANAGER_ID, "user_name": "grace",
                           "permissions": MEMBER_PERMISSIONS | MANAGE_CHANNELS}
"""`interaction_json(..., **MANAGER)`: a member with Manage Channels in the channel."""
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def user_json(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    """A user object."""
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name, "avatar": None,
            "bot": bot, "public_flags": 0}


BOT_USER = user_json(BOT_ID, "leaderwatch", bot=True)


def channel_json(channel_id: int = CHANNEL_ID, guild_id: int = GUILD_ID) -> dict[str, Any]:
    """A guild text channel as interactions carry it."""
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "general", "position": 0,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}


def member_json(user_id: int, name: str, permissions: int) -> dict[str, Any]:
    """A guild member as interactions carry it: `permissions` is resolved for the channel."""
    return {"user": user_json(user_id, name), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None,
            "premium_since": None, "communication_disabled_until": None, "permissions": str(permissions)}


_ids = itertools.count(1)


def _option(name: str, value: object, focused: bool = False) -> dict[str, Any]:
    kind = 4 if isinstance(value, int) else 3
    option: dict[str, Any] = {"type": kind, "name": name, "value": value}
    if focused:
        option["focused"] = True
    return option


def _interaction(kind: int, data: dict[str, Any], *, user_id: int, user_name: str, permissions: int,
                 channel: dict[str, Any], guild_id: int) -> dict[str, Any]:
    """The envelope every guild interaction has (discord.py 2.7.1 reads `attachment_size_limit`)."""
    n = next(_ids)
    return {
        "id": str(960000000000000000 + n), "application_id": str(APP_ID), "type": kind, "data": data,
        "guild_id": str(guild_id), "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
        "channel_id": channel["id"], "channel": channel,
        "member": member_json(user_id, user_name, permissions), "token": f"interaction-token-{n}",
        "version": 1, "app_permissions": str(MEMBER_PERMISSIONS), "locale": "en-US", "guild_locale": "en-US",
        "entitlements": [], "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }


def interaction_json(group: str, subcommand: str, options: dict[str, object], *, kind: int = 2,
                     focused: str | None = None, user_id: int = MEMBER_ID, user_name: str = "ada",
                     permissions: int = MEMBER_PERMISSIONS, channel_id: int = CHANNEL_ID,
                     guild_id: int = GUILD_ID) -> dict[str, Any]:
    """An `INTERACTION_CREATE` for `/group subcommand option:value ...` (kind 2) or its autocomplete (4)."""
    data: dict[str, Any] = {
        "id": str(COMMAND_ID), "name": group, "type": 1, "guild_id": str(guild_id),
        "options": [{"type": 1, "name": subcommand,
                     "options": [_option(k, v, k == focused) for k, v in options.items()]}],
    }
    return _interaction(kind, data, user_id=user_id, user_name=user_name, permissions=permissions,
                        channel=channel_json(channel_id, guild_id), guild_id=guild_id)


def _components_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons and selects of a message (inside its action rows)."""
    return [c for row in message.get("components") or [] for c in row.get("components") or []]


def component_interaction(custom_id: str, *, message: dict[str, Any], component_type: int = 2,
                          values: Sequence[str] | None = None, user_id: int = MEMBER_ID,
                          user_name: str = "ada", permissions: int = MEMBER_PERMISSIONS,
                          channel: dict[str, Any] | None = None, guild_id: int = GUILD_ID) -> dict[str, Any]:
    """An `INTERACTION_CREATE` of type 3 (MESSAGE_COMPONENT): someone clicked the button `custom_id` on
    `message` (a message dict the fake made), or chose `values` in that select (`component_type` 3).

    Discord sends the whole message the component is on, and the member with `permissions` resolved for
    the channel (`**MANAGER` for one with Manage Channels). `channel` defaults to the message's channel as
    a text channel; pass `fake.threads[id]` for a message in a thread. Raises ValueError for a click
    Discord never sends: a custom id not on the message, another component type, a disabled component,
    values that are not among a select's options or not within its `min_values`..`max_values`.
    """
    found = [c for c in _components_of(message) if c.get("custom_id") == custom_id]
    if not found or found[0]["type"] != component_type or found[0].get("disabled"):
        raise ValueError(f"no enabled component of type {component_type} with custom_id {custom_id!r} "
                         f"on message {message['id']}")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
    if component_type != 2:
        select, chosen = found[0], list(values or [])
        allowed = {o["value"] for o in select.get("options") or []}
        count_ok = select.get("min_values", 1) <= len(chosen) <= select.get("max_values", 1)
        if not count_ok or (component_type == 3 and not set(chosen) <= allowed):
            raise ValueError(f"values {chosen} cannot be chosen in select {custom_id!r}")
        data["values"] = chosen
    shown = {k: v for k, v in copy.deepcopy(message).items() if k != "nonce"}
    payload = _interaction(3, data, user_id=user_id, user_name=user_name, permissions=permissions,
                           channel=channel or channel_json(int(message["channel_id"]), guild_id),
                           guild_id=guild_id)
    return payload | {"message": shown}


def snowflake(when_ms: int, n: int = 0) -> int:
    """A Discord id for a moment (milliseconds since 1970), `n` telling ids of one millisecond apart."""
    return ((when_ms - DISCORD_EPOCH_MS) << 22) | (n & 0x3FFFFF)


def embed_problems(body: dict[str, Any], *, has_files: bool = False) -> list[str]:
    """What Discord would refuse in a message body (its documented limits); files make it non-empty."""
    problems = []
    if len(body.get("content") or "") > 2000:
        problems.append("content: over 2000")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        problems.append("embeds: over 10")
    total = 0
    for i, e in enumerate(embeds):
        fields = e.get("fields") or []
        sizes = {"title": (e.get("title") or "", 256), "description": (e.get("description") or "", 4096),
                 "footer": ((e.get("footer") or {}).get("text") or "", 2048)}
        for key, (text, limit) in sizes.items():
            if len(text) > limit:
                problems.append(f"embeds.{i}.{key}: over {limit}")
            total += len(text)
        if len(fields) > 25:
            problems.append(f"embeds.{i}.fields: over 25")
        for j, f in enumerate(fields):
            if not f.get("name") or len(f["name"]) > 256:
                problems.append(f"embeds.{i}.fields.{j}.name: empty or over 256")
            if not f.get("value") or len(f["value"]) > 1024:
                problems.append(f"embeds.{i}.fields.{j}.value: empty or over 1024")
            total += len(f.get("name") or "") + len(f.get("value") or "")
        if not (e.get("title") or e.get("description") or fields or e.get("footer") or e.get("image")):
            problems.append(f"embeds.{i}: empty embed")
    if total > 6000:
        problems.append(f"embeds: {total} characters, over 6000")
    if not embeds and not has_files and not (body.get("content") or "").strip():
        problems.append("message: cannot send an empty message")
    return problems


SELECTS = (3, 5, 6, 7, 8)
"""String, user, role, mentionable and channel selects."""
LINK = 5
"""The button style that opens `url` and sends no interaction."""


def _button_problems(where: str, button: dict[str, Any]) -> list[str]:
    problems = []
    if button.get("style") == LINK:
        if not button.get("url") or "custom_id" in button:
            problems.append(f"{where}: a link button has a url and no custom_id")
    elif not 1 <= len(button.get("custom_id") or "") <= 100:
        problems.append(f"{where}.custom_id: 1 to 100 characters")
    if len(button.get("label") or "") > 80:
        problems.append(f"{where}.label: over 80")
    if not (button.get("label") or button.get("emoji")):
        problems.append(f"{where}: a button needs a label or an emoji")
    return problems


def _select_problems(where: str, select: dict[str, Any]) -> list[str]:
    problems = []
    if not 1 <= len(select.get("custom_id") or "") <= 100:
        problems.append(f"{where}.custom_id: 1 to 100 characters")
    if select["type"] == 3:
        options = select.get("options") or []
        if not 1 <= len(options) <= 25:
            problems.append(f"{where}.options: 1 to 25")
        for k, option in enumerate(options):
            for key in ("label", "value"):
                if not 1 <= len(option.get(key) or "") <= 100:
                    problems.append(f"{where}.options.{k}.{key}: 1 to 100 characters")
            if len(option.get("description") or "") > 100:
                problems.append(f"{where}.options.{k}.description: over 100")
    return problems


def component_problems(components: Sequence[dict[str, Any]]) -> list[str]:
    """What Discord would refuse in a message's `components`: at most 5 action rows (type 1), each
    holding 1 to 5 buttons (type 2) or exactly one select (3, 5-8); custom ids of 1 to 100 characters,
    unique in the message; button labels up to 80; a link button (style 5) has a url and no custom id;
    a string select has 1 to 25 options, each label and value 1 to 100 characters.

    Components v2 (flag 1 << 15: sections, containers ...) are not modelled: they are refused.
    """
    problems = []
    if len(components) > 5:
        problems.append("components: over 5 action rows")
    seen: set[str] = set()
    for i, row in enumerate(components):
        if row.get("type") != 1:
            problems.append(f"components.{i}: not an action row")
            continue
        inner = row.get("components") or []
        kinds = [c.get("type") for c in inner]
        buttons = 1 <= len(kinds) <= 5 and all(k == 2 for k in kinds)
        if not buttons and not (len(kinds) == 1 and kinds[0] in SELECTS):
            problems.append(f"components.{i}.components: 1 to 5 buttons or one select, not {kinds}")
        for j, item in enumerate(inner):
            where = f"components.{i}.components.{j}"
            if item.get("type") == 2:
                problems += _button_problems(where, item)
            elif item.get("type") in SELECTS:
                problems += _select_problems(where, item)
            if (custom_id := item.get("custom_id")) is not None:
                if custom_id in seen:
                    problems.append(f"{where}.custom_id: {custom_id!r} used twice in the message")
                seen.add(custom_id)
    return problems


def message_problems(body: dict[str, Any], *, has_files: bool = False) -> list[str]:
    """What Discord would refuse in a message body: `embed_problems` and `component_problems`."""
    return embed_problems(body, has_files=has_files) + component_problems(body.get("components") or [])


@dataclass
class Attachment:
    """A file sent with a request (a multipart `files[n]` part)."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class Request:
    """One REST request as the fake received it (a multipart body: its `payload_json`, and its files)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str | None
    files: list[Attachment] = field(default_factory=list)


@dataclass
class Failure:
    """A scripted answer to the next `count` matching requests."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    count: int = 1
    create_first: bool = False
    """The message is stored before the error is sent (Discord took it, the answer got lost)."""


EPHEMERAL = 1 << 6
LOADING = 1 << 7
"""Message flags: only the invoking user sees it; a deferred reply still "thinking"."""
GUILDS_INTENT = 1 << 0
PUBLIC_THREAD = 11
ARCHIVE_MINUTES = (60, 1440, 4320, 10080)
UNKNOWN_MESSAGE: dict[str, Any] = {"message": "Unknown Message", "code": 10008}


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    """A message as Discord shows it once sent: the nonce is only echoed in the answer to the send."""
    return {k: v for k, v in message.items() if k != "nonce"}



@dataclass
class FakeDiscord:
    """The fake. `clock` stamps message ids (e2e tests share theirs with the service)."""

    clock: Callable[[], float] = time.time
    requests: list[Request] = field(default_factory=list)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """channel or thread id -> the messages in it, oldest first (deleted ones leave)."""
    failures: dict[tuple[str, str], list[Failure]] = field(default_factory=dict)
    """(method, path under /api/v10) -> scripted answers, used in order."""
    gone: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    """channel id -> (status, code, message) every request for it gets (10003 Unknown Channel ...)."""
    identifies: list[dict[str, Any]] = field(default_factory=list)
    threads: dict[int, dict[str, Any]] = field(default_factory=dict)
    """thread id (the id of the message it was started from) -> the thread channel as Discord answers it."""
    edits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """message id -> the bodies that changed it, in order (PATCH, a component's update, an @original edit)."""
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """interaction id -> the `INTERACTION_CREATE` payload sent to the clients."""
    global_rate: float | None = None
    """Requests a second a bot may make (Discord's global limit is 50); beyond, a global 429 with
    `retry_after`, as Discord answers. None (the default): no limit. Interactions are not counted."""
    rate_limited: list[Request] = field(default_factory=list)
    """The requests answered with that 429."""
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._sockets: dict[web.WebSocketResponse, int] = {}  # open connection -> its intents (0 at first)
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        # message id -> every message made and not deleted: posts, interaction replies, follow-ups
        self._made: dict[int, dict[str, Any]] = {}
        # interaction token -> the id of the message its `@original` is (its reply, or the clicked message)
        self._originals: dict[str, int] = {}
        self._acked: set[str] = set()
        self.changed = asyncio.Condition()
        self._global: Bucket | None = None
        # interaction token -> set once the HTTP answer to it (HTTP interactions) is in: webhook calls wait
        self._http_answers: dict[str, asyncio.Event] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner, self.port = await serve_loopback(app)
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    # -- what tests ask --------------------------------------------------------------------------------

    def fail(self, method: str, path: str, failure: Failure) -> None:
        """Answer the next `failure.count` requests to `method path` (e.g. POST channels/1/messages)."""
        self.failures.setdefault((method, path), []).append(failure)

    def made(self, method: str, prefix: str) -> list[Request]:
        """The requests to `method` paths starting with `prefix` (under /api/v10/)."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def callbacks(self, interaction: dict[str, Any]) -> list[dict[str, Any]]:
        """The bodies of the interaction callbacks answering `interaction`."""
        path = f"interactions/{interaction['id']}/{interaction['token']}/callback"
        return [r.body for r in self.requests if r.method == "POST" and r.path == path]

    def followups(self, interaction: dict[str, Any], method: str = "POST") -> list[dict[str, Any]]:
        """Follow-ups (POST), edits (PATCH .../@original) or deletes of the original (DELETE)."""
        base = f"webhooks/{APP_ID}/{interaction['token']}"
        if method == "POST":
            return [r.body for r in self.requests if r.method == "POST" and r.path == base]
        original = f"{base}/messages/@original"
        return [r.body for r in self.requests if r.method == method and r.path == original]

    def original(self, interaction: dict[str, Any]) -> dict[str, Any]:
        """The message an interaction's `@original` is, as it is now: its reply (callback 4 or 5), or the
        message its component is on (6 or 7). KeyError before the callback or once deleted."""
        return self._made[self._originals[interaction["token"]]]

    def message(self, message_id: int) -> dict[str, Any]:
        """A message the fake made and still has, as it is now: a post in a channel or thread, an
        interaction's reply (ephemeral ones too) or a follow-up. KeyError once deleted."""
        return self._made[message_id]

    def thread_posts(self, message_id: int) -> list[dict[str, Any]]:
        """The messages in the thread started from message `message_id` (it has that id), oldest first."""
        return self.posts(message_id)

    def delete_message(self, channel_id: int, message_id: int) -> None:
        """Someone (a moderator, the author) deletes a message in Discord: it leaves the channel's history
        and every later request for it (edit, delete, starting a thread) gets 404 Unknown Message (10008).
        A thread already started from it stays, as on Discord."""
        message = self._made.get(message_id)
        if message is None or message["channel_id"] != str(channel_id):
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        self._forget(message)

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; an AssertionError showing it when `timeout` seconds pass first."""
        await wait_until(predicate, timeout, changed=self.changed)

    async def interact(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an `INTERACTION_CREATE` and return the body of the callback that answers it."""
        await self.dispatch("INTERACTION_CREATE", payload)
        await self.wait_for(lambda: self.callbacks(payload), timeout)
        return self.callbacks(payload)[0]

    async def post_interaction(self, url: str, payload: dict[str, Any], headers: dict[str, str],
                               body: bytes | None = None) -> tuple[int, Any]:
        """Discord posting `payload` (or the raw `body`) to an Interactions Endpoint URL with `headers` (the
        signature): the HTTP status and the JSON answered. A 200 answer of type 4-7 counts as the
        interaction's callback (recorded as `POST interactions/{id}/{token}/callback`), so `@original`
        edits and follow-ups work as after a gateway interaction's callback."""
        self.interactions[payload["id"]] = payload
        answered = self._http_answers.setdefault(payload["token"], asyncio.Event())
        try:
            async with ClientSession() as session, session.post(
                    url, data=body if body is not None else json.dumps(payload).encode(),
                    headers={"Content-Type": "application/json", **headers}) as response:
                status, answer = response.status, await response.json(content_type=None)
            if status == 200 and isinstance(answer, dict) and answer.get("type") in (4, 5, 6, 7):
                path = f"interactions/{payload['id']}/{payload['token']}/callback"
                self.requests.append(Request("POST", path, {}, answer, None))
                self._callback(payload["id"], payload["token"], answer)
        finally:
            answered.set()
            await self._notify()
        return status, answer

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway dispatch (op 0) to every connected client."""
        if event == "INTERACTION_CREATE":
            self.interactions[data["id"]] = data
        await self._broadcast(event, data)

    async def _broadcast(self, event: str, data: dict[str, Any], intent: int = 0) -> None:
        """Send a dispatch to the clients that identified with `intent` (all of them for 0)."""
        frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
        for ws, intents in list(self._sockets.items()):
            if not ws.closed and (intents & intent) == intent:
                await ws.send_str(frame)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- gateway -----------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets[ws] = 0
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame.get("op") == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif frame.get("op") == 2:
                    self.identifies.append(frame["d"])
                    self._sockets[ws] = int(frame["d"].get("intents") or 0)
                    await self._welcome(ws)
                    await self._notify()
        finally:
            self._sockets.pop(ws, None)  # a client that closed (a restart) gets nothing more
        return ws

    async def _welcome(self, ws: web.WebSocketResponse) -> None:
        ready = {"v": 10, "user": BOT_USER, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                 "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
                 "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [], "relationships": []}
        await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._seq), "d": ready}))
        guild = {"id": str(GUILD_ID), "name": "AI watchers", "unavailable": False, "member_count": 2,
                 "owner_id": str(MANAGER_ID), "joined_at": "2024-01-01T00:00:00+00:00", "large": False,
                 "channels": [channel_json()], "threads": [], "members": [], "voice_states": [],
                 "presences": [], "stage_instances": [], "guild_scheduled_events": [], "emojis": [],
                 "stickers": [], "features": [], "roles": [{
                     "id": str(GUILD_ID), "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS),
                     "position": 0, "color": 0, "hoist": False, "managed": False, "mentionable": False,
                     "flags": 0}]}
        await ws.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": guild}))

    # -- REST --------------------------------------------------------------------------------------------

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        # discord.py parses JSON only when Content-Type is exactly application/json (no charset).
        return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json",
                            headers=headers)

    @staticmethod
    async def _read(request: web.Request) -> tuple[Any, list[Attachment]]:
        """The JSON body, or a multipart body's `payload_json` and files."""
        if request.content_type != "multipart/form-data":
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        body: Any = None
        files: list[Attachment] = []
        async for part in await request.multipart():
            assert isinstance(part, BodyPartReader)
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                files.append(Attachment(part.name or "", part.filename or "",
                                        part.headers.get("Content-Type"), bytes(await part.read())))
        return body, files

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body, files = await self._read(request)
        self.requests.append(Request(request.method, path, dict(request.query), body,
                                     request.headers.get("Authorization"), files))
        if self.global_rate and not path.startswith(("interactions/", "webhooks/")):
            if self._global is None or self._global.rate != self.global_rate:
                self._global = Bucket(self.global_rate)  # may be turned on (or changed) while running
            wait = self._global.take()
            if wait > 0:
                self.rate_limited.append(self.requests[-1])
                return self._json({"message": "You are being rate limited.", "retry_after": round(wait, 3),
                                   "global": True}, 429,
                                  {"Retry-After": str(max(1, round(wait))), "X-RateLimit-Global": "true",
                                   "X-RateLimit-Scope": "global", "Via": "1.1 google"})
        token = path.split("/")[2] if path.startswith("webhooks/") and path.count("/") >= 2 else ""
        if gate := self._http_answers.get(token):
            await asyncio.wait_for(gate.wait(), 5.0)  # Discord takes the HTTP answer before the edit
        try:
            return await self._answer(request.method, path, dict(request.query), body,
                                      request.headers.get("Authorization"), files)
        finally:
            await self._notify()

    @staticmethod
    def _invalid(problems: list[str]) -> web.Response:
        return FakeDiscord._json({"code": 50035, "message": "Invalid Form Body", "errors": problems}, 400)

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat()

    def _attachments(self, files: Sequence[Attachment], flags: int) -> list[dict[str, Any]]:
        """Attachment objects for uploaded files; those of an ephemeral message are ephemeral too."""
        now_ms = int(self.clock() * 1000)
        return [{"id": str(snowflake(now_ms, next(self._ids))), "filename": f.filename, "size": len(f.data),
                 "url": f"https://cdn.discord.invalid/{f.filename}",
                 "proxy_url": f"https://media.discord.invalid/{f.filename}", "content_type": f.content_type}
                | ({"ephemeral": True} if flags & EPHEMERAL else {}) for f in files]

    def _message(self, channel_id: int, body: dict[str, Any], flags: int = 0,
                 files: Sequence[Attachment] = ()) -> dict[str, Any]:
        now_ms = int(self.clock() * 1000)
        stamp = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat()
        return {"id": str(snowflake(now_ms, next(self._ids))), "channel_id": str(channel_id),
                "author": BOT_USER, "content": body.get("content") or "", "timestamp": stamp,
                "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": [], "mention_roles": [], "attachments": self._attachments(files, flags),
                "embeds": body.get("embeds") or [], "pinned": False, "type": 0, "flags": flags,
                "components": body.get("components") or []}

    def _keep(self, message: dict[str, Any]) -> dict[str, Any]:
        self._made[int(message["id"])] = message
        return message

    def _forget(self, message: dict[str, Any]) -> None:
        self._made.pop(int(message["id"]), None)
        stored = self.messages.get(int(message["channel_id"]), [])
        stored[:] = [m for m in stored if m is not message]

    def _edit(self, message: dict[str, Any], body: dict[str, Any], files: Sequence[Attachment]) -> list[str]:
        """Apply an edit as Discord does, or return what Discord would refuse (and change nothing).

        Fields left out stay; `attachments`, when given, lists the ones to keep besides the new files.
        The first edit of a deferred reply is its answer: it stops "thinking" and is not marked edited.
        """
        changes: dict[str, Any] = {key: body[key] or [] for key in ("embeds", "components") if key in body}
        if "content" in body:
            changes["content"] = body["content"] or ""
        kept = message["attachments"]
        if "attachments" in body:
            listed = {str(a.get("id")) for a in body["attachments"] or []}
            kept = [a for a in kept if a["id"] in listed]
        changes["attachments"] = kept + self._attachments(files, message["flags"])
        changes["flags"] = message["flags"] & ~LOADING
        changes["edited_timestamp"] = None if message["flags"] & LOADING else self._stamp()
        edited = message | changes
        if problems := message_problems(edited, has_files=bool(edited["attachments"])):
            return problems
        message.update(edited)
        self.edits.setdefault(int(message["id"]), []).append(body)
        return []

    def attachments(self, request: Request) -> dict[str, Attachment]:
        """A request's files by file name."""
        return {f.filename: f for f in request.files}

    async def _answer(self, method: str, path: str, query: dict[str, str], body: Any,
                      auth: str | None, files: Sequence[Attachment] = ()) -> web.Response:
        scripted = self.failures.get((method, path))
        if scripted:
            failure = scripted[0]
            failure.count -= 1
            if failure.count <= 0:
                scripted.pop(0)
            if failure.create_first:
                await self._answer_ok(method, path, query, body, files)
            return self._json(failure.body, failure.status, failure.headers)
        bot_route = path.startswith(("users/", "oauth2/", "applications/", "channels/"))
        if bot_route and auth != f"Bot {TOKEN}":
            return self._json({"message": "401: Unauthorized", "code": 0}, 401)
        return await self._answer_ok(method, path, query, body, files)

    async def _answer_ok(self, method: str, path: str, query: dict[str, str], body: Any,
                         files: Sequence[Attachment] = ()) -> web.Response:
        parts = path.split("/")
        if path == "users/@me":
            return self._json(BOT_USER)
        if path == "oauth2/applications/@me":
            return self._json({"id": str(APP_ID), "name": "leaderwatch", "description": "", "icon": None,
                               "bot_public": True, "bot_require_code_grant": False, "owner": user_json(
                                   MANAGER_ID, "owner"), "verify_key": "0" * 64, "flags": 0,
                               "summary": "", "team": None})
        if parts[0] == "applications" and method == "PUT":
            return self._json([{**c, "id": str(COMMAND_ID + i), "application_id": str(APP_ID), "version": "1",
                                **({"guild_id": parts[3]} if "guilds" in parts else {})}
                               for i, c in enumerate(body or [])])
        if parts[0] == "channels" and len(parts) == 3 and parts[2] == "messages":
            return self._channel_messages(method, int(parts[1]), query, body, files)
        if parts[0] == "channels" and len(parts) >= 4 and parts[2] == "messages" and parts[3].isdigit():
            return await self._channel_message(method, int(parts[1]), int(parts[3]), parts[4:], body or {},
                                               files)
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], parts[2], body, files)
        if parts[0] == "webhooks":
            return self._webhook(method, parts[2], parts[4:], body or {}, files)
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any],
                  files: Sequence[Attachment] = ()) -> web.Response:
        """Types 4 (reply) and 5 (defer, "thinking") make a message; for a component, 6 acknowledges
        (the message is edited later) and 7 updates the message the component is on; 8 (autocomplete
        choices) is only recorded. An interaction is answered once (40060 after that)."""
        kind = body["type"]
        data = body.get("data") or {}
        sent = self.interactions.get(interaction_id, {})
        source = sent.get("type", 2)
        if interaction_id in self._acked:
            return self._json({"code": 40060, "message": "Interaction has already been acknowledged."}, 400)
        if kind in (6, 7) and source not in (3, 5):
            return self._invalid([f"type: {kind} answers only a component or a modal"])
        if kind == 4 and (problems := message_problems(data, has_files=bool(files))):
            return self._invalid(problems)
        message: dict[str, Any] | None = None
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            message = self._keep(self._message(int(sent.get("channel_id") or CHANNEL_ID), data, flags, files))
        elif kind in (6, 7):
            message = self._made.get(int(sent["message"]["id"])) if "message" in sent else None
            if message is None:
                return self._json(UNKNOWN_MESSAGE, 404)
            if kind == 7 and (problems := self._edit(message, data, files)):
                return self._invalid(problems)
        self._acked.add(interaction_id)
        answer: dict[str, Any] = {"interaction": {
            "id": interaction_id, "type": source, "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL)}}
        if message is not None:
            self._originals[token] = int(message["id"])
            if kind != 6:
                answer["interaction"]["response_message_id"] = message["id"]
                answer["resource"] = {"type": kind, "message": message}
        return self._json(answer)

    def _webhook(self, method: str, token: str, rest: list[str], body: dict[str, Any],
                 files: Sequence[Attachment]) -> web.Response:
        """Follow-ups (POST); getting, editing or deleting `@original` or a follow-up by id."""
        if not rest:
            if problems := message_problems(body, has_files=bool(files)):
                return self._invalid(problems)
            sent = next((i for i in self.interactions.values() if i["token"] == token), {})
            channel_id = int(sent.get("channel_id") or CHANNEL_ID)
            flags = int(body.get("flags") or 0)
            return self._json(self._keep(self._message(channel_id, body, flags, files)
                                         | {"webhook_id": str(APP_ID)}))
        which = rest[-1]
        target = self._made.get(self._originals.get(token, 0) if which == "@original" else int(which))
        if target is None:
            return self._json(UNKNOWN_MESSAGE, 404)
        if method == "GET":
            return self._json(target)
        if method == "DELETE":
            self._forget(target)
            return web.Response(status=204)
        if problems := self._edit(target, body, files):
            return self._invalid(problems)
        return self._json(target)

    def _gone(self, channel_id: int) -> web.Response | None:
        if channel_id not in self.gone:
            return None
        status, code, text = self.gone[channel_id]
        return self._json({"message": text, "code": code}, status)

    def _channel_messages(self, method: str, channel_id: int, query: dict[str, str],
                          body: Any, files: Sequence[Attachment] = ()) -> web.Response:
        if gone := self._gone(channel_id):
            return gone
        stored = self.messages.setdefault(channel_id, [])
        if method == "GET":
            return self._json(self.history(channel_id, int(query.get("after") or 0),
                                           int(query.get("limit") or 50)))
        if problems := message_problems(body, has_files=bool(files)):
            return self._invalid(problems)
        nonce = body.get("nonce")
        if nonce and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
            return self._json(self._nonces[(channel_id, nonce)])  # Discord's answer to a repeat
        message = self._keep(self._message(channel_id, body, files=files) | {"nonce": nonce})
        stored.append(message)
        if nonce:
            self._nonces[(channel_id, nonce)] = message
        if (thread := self.threads.get(channel_id)) is not None:
            thread.update(last_message_id=message["id"], message_count=thread["message_count"] + 1,
                          total_message_sent=thread["total_message_sent"] + 1)
        return self._json(message)

    async def _channel_message(self, method: str, channel_id: int, message_id: int, rest: list[str],
                               body: dict[str, Any], files: Sequence[Attachment]) -> web.Response:
        """`PATCH` or `DELETE /channels/{c}/messages/{m}`, `POST .../{m}/threads`."""
        if gone := self._gone(channel_id):
            return gone
        message = self._made.get(message_id)
        if message is None or message["channel_id"] != str(channel_id) or message["flags"] & EPHEMERAL:
            return self._json(UNKNOWN_MESSAGE, 404)
        if rest == ["threads"] and method == "POST":
            return await self._start_thread(message, body)
        if rest or method not in ("PATCH", "DELETE"):
            return self._json({"message": "405: Method Not Allowed", "code": 0}, 405)
        if method == "DELETE":
            self._forget(message)
            return web.Response(status=204)
        if problems := self._edit(message, body, files):
            return self._invalid(problems)
        return self._json(_shown(message))

    async def _start_thread(self, message: dict[str, Any], body: dict[str, Any]) -> web.Response:
        """A public thread from a message: it takes the message's id, so a message has at most one."""
        if "thread" in message:
            return self._json({"message": "A thread has already been created for this message",
                               "code": 160004}, 400)
        if int(message["channel_id"]) in self.threads:
            return self._json({"message": "Cannot execute action on this channel type", "code": 50024}, 400)
        name, minutes = body.get("name") or "", body.get("auto_archive_duration") or 1440
        problems = [] if 1 <= len(name) <= 100 else ["name: 1 to 100 characters"]
        if minutes not in ARCHIVE_MINUTES:
            problems.append(f"auto_archive_duration: one of {ARCHIVE_MINUTES}")
        if problems:
            return self._invalid(problems)
        stamp = self._stamp()
        thread = {"id": message["id"], "guild_id": str(GUILD_ID), "parent_id": message["channel_id"],
                  "owner_id": str(BOT_ID), "name": name, "type": PUBLIC_THREAD, "last_message_id": None,
                  "message_count": 0, "total_message_sent": 0, "member_count": 1,
                  "rate_limit_per_user": body.get("rate_limit_per_user") or 0, "flags": 0,
                  "thread_metadata": {"archived": False, "auto_archive_duration": minutes, "locked": False,
                                      "archive_timestamp": stamp, "create_timestamp": stamp}}
        self.threads[int(message["id"])] = message["thread"] = thread
        # Discord tells the guild's clients (those with the GUILDS intent) of the new thread.
        await self._broadcast("THREAD_CREATE", thread | {"newly_created": True}, GUILDS_INTENT)
        return self._json(thread)

    def history(self, channel_id: int, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """`GET /channels/{id}/messages?after=&limit=` as Discord answers it: newest first, no nonces."""
        later = [m for m in self.messages.get(channel_id, []) if int(m["id"]) > after][:limit]
        return [_shown(m) for m in reversed(later)]

    def posts(self, channel_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        """The messages in a channel, oldest first."""
        return list(self.messages.get(channel_id, []))


def keep_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore discord.py's REST base and gateway after the test (the service points them at the fake)."""
    route, socket = adapter.discord.http.Route, adapter.DiscordWebSocket
    monkeypatch.setattr(route, "BASE", route.BASE)
    monkeypatch.setattr(socket, "DEFAULT_GATEWAY", socket.DEFAULT_GATEWAY)


def settings_for(fake: FakeDiscord, **changes: Any) -> Settings:
    """Settings pointing the bot at the fake, commands synced to the fake's guild."""
    values: dict[str, Any] = {"db_path": ":memory:", "discord_token": TOKEN, "discord_api_url": fake.api_url,
                              "discord_gateway_url": fake.gateway_url, "discord_guilds": (GUILD_ID,)}
    return Settings(**(values | changes))
