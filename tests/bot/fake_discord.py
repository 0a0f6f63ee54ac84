"""A fake Discord on 127.0.0.1: the REST routes leaderwatch uses and a gateway that speaks JSON text frames.

The real discord.py 2.7 client logs in, syncs its commands, connects and receives `INTERACTION_CREATE`
from here; every REST request is recorded, with the files of a multipart one (`payload_json` and
`files[n]`, as discord.py sends attachments). Like Discord, the fake checks the bot token, refuses
messages over the embed limits (400, code 50035), answers a repeated `enforce_nonce` nonce with the
message it already has, and can be told to answer 429 (with `Via: 1.1 google` as Discord's edge
does), 5xx, Unknown Channel or Missing Access.

Payload shapes are those discord.py 2.7.1 reads and sends (interactions need
`attachment_size_limit`; callbacks go out with `?with_response=1` and are answered with an
`InteractionCallbackResponse`); the builders below are the fixtures the tests use.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import BodyPartReader, WSMsgType, web

import leaderwatch.bot.chat.discord_bot as adapter  # first: it imports discord.py without its audioop warning
from leaderwatch.bot.settings import Settings
from tests.helpers import serve_loopback, wait_until

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


def interaction_json(group: str, subcommand: str, options: dict[str, object], *, kind: int = 2,
                     focused: str | None = None, user_id: int = MEMBER_ID, user_name: str = "ada",
                     permissions: int = MEMBER_PERMISSIONS, channel_id: int = CHANNEL_ID,
                     guild_id: int = GUILD_ID) -> dict[str, Any]:
    """An `INTERACTION_CREATE` for `/group subcommand option:value ...` (kind 2) or its autocomplete (4)."""
    n = next(_ids)
    data: dict[str, Any] = {
        "id": str(COMMAND_ID), "name": group, "type": 1, "guild_id": str(guild_id),
        "options": [{"type": 1, "name": subcommand,
                     "options": [_option(k, v, k == focused) for k, v in options.items()]}],
    }
    return {
        "id": str(960000000000000000 + n), "application_id": str(APP_ID), "type": kind, "data": data,
        "guild_id": str(guild_id), "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
        "channel_id": str(channel_id), "channel": channel_json(channel_id, guild_id),
        "member": member_json(user_id, user_name, permissions), "token": f"interaction-token-{n}",
        "version": 1, "app_permissions": str(MEMBER_PERMISSIONS), "locale": "en-US", "guild_locale": "en-US",
        "entitlements": [], "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }


def snowflake(when_ms: int, n: int = 0) -> int:
    """A Discord id for a moment (milliseconds since 1970), `n` telling ids of one millisecond apart."""
    return ((when_ms - DISCORD_EPOCH_MS) << 22) | (n & 0x3FFFFF)


def embed_problems(body: dict[str, Any]) -> list[str]:
    """What Discord would refuse in a message body (its documented limits)."""
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
    if not embeds and not (body.get("content") or "").strip():
        problems.append("message: cannot send an empty message")
    return problems


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


@dataclass
class FakeDiscord:
    """The fake. `clock` stamps message ids (e2e tests share theirs with the service)."""

    clock: Callable[[], float] = time.time
    requests: list[Request] = field(default_factory=list)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """channel id -> the messages in it, oldest first."""
    failures: dict[tuple[str, str], list[Failure]] = field(default_factory=dict)
    """(method, path under /api/v10) -> scripted answers, used in order."""
    gone: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    """channel id -> (status, code, message) every request for it gets (10003 Unknown Channel ...)."""
    identifies: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self.changed = asyncio.Condition()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner, self.port = await serve_loopback(app)
        return self

    async def stop(self) -> None:
        for ws in self._sockets:
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

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; an AssertionError showing it when `timeout` seconds pass first."""
        await wait_until(predicate, timeout, changed=self.changed)

    async def interact(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an `INTERACTION_CREATE` and return the body of the callback that answers it."""
        await self.dispatch("INTERACTION_CREATE", payload)
        await self.wait_for(lambda: self.callbacks(payload), timeout)
        return self.callbacks(payload)[0]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway dispatch (op 0) to every connected client."""
        frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
        for ws in self._sockets:
            if not ws.closed:
                await ws.send_str(frame)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- gateway -----------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("op") == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif frame.get("op") == 2:
                self.identifies.append(frame["d"])
                await self._welcome(ws)
                await self._notify()
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
        try:
            return await self._answer(request.method, path, dict(request.query), body,
                                      request.headers.get("Authorization"), files)
        finally:
            await self._notify()

    def _message(self, channel_id: int, body: dict[str, Any], flags: int = 0,
                 files: Sequence[Attachment] = ()) -> dict[str, Any]:
        now_ms = int(self.clock() * 1000)
        stamp = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat()
        attachments = [{"id": str(snowflake(now_ms, next(self._ids))), "filename": f.filename,
                        "size": len(f.data), "url": f"https://cdn.discord.invalid/{f.filename}",
                        "proxy_url": f"https://media.discord.invalid/{f.filename}",
                        "content_type": f.content_type} for f in files]
        return {"id": str(snowflake(now_ms, next(self._ids))), "channel_id": str(channel_id),
                "author": BOT_USER, "content": body.get("content") or "", "timestamp": stamp,
                "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": [], "mention_roles": [], "attachments": attachments,
                "embeds": body.get("embeds") or [], "pinned": False, "type": 0, "flags": flags,
                "components": []}

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
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], body, files)
        if parts[0] == "webhooks":
            if problems := embed_problems(body) if method in ("POST", "PATCH") and body else []:
                return self._json({"code": 50035, "message": "Invalid Form Body", "errors": problems}, 400)
            if method == "DELETE":
                return web.Response(status=204)
            flags = int((body or {}).get("flags") or 0)
            message = self._message(CHANNEL_ID, body or {}, flags, files)
            return self._json(message | {"webhook_id": str(APP_ID)})
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    def _callback(self, interaction_id: str, body: dict[str, Any],
                  files: Sequence[Attachment] = ()) -> web.Response:
        kind = body["type"]
        data = body.get("data") or {}
        if kind in (4, 7) and (problems := embed_problems(data)):
            return self._json({"code": 50035, "message": "Invalid Form Body", "errors": problems}, 400)
        flags = int(data.get("flags") or 0)
        answer: dict[str, Any] = {"interaction": {
            "id": interaction_id, "type": 2, "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(flags & 64)}}
        if kind in (4, 5):
            message = self._message(CHANNEL_ID, data, flags | (128 if kind == 5 else 0), files)
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        return self._json(answer)

    def _channel_messages(self, method: str, channel_id: int, query: dict[str, str],
                          body: Any, files: Sequence[Attachment] = ()) -> web.Response:
        if channel_id in self.gone:
            status, code, text = self.gone[channel_id]
            return self._json({"message": text, "code": code}, status)
        stored = self.messages.setdefault(channel_id, [])
        if method == "GET":
            return self._json(self.history(channel_id, int(query.get("after") or 0),
                                           int(query.get("limit") or 50)))
        if problems := embed_problems(body):
            return self._json({"code": 50035, "message": "Invalid Form Body", "errors": problems}, 400)
        nonce = body.get("nonce")
        if nonce and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
            return self._json(self._nonces[(channel_id, nonce)])  # Discord's answer to a repeat
        message = self._message(channel_id, body, files=files) | {"nonce": nonce}
        stored.append(message)
        if nonce:
            self._nonces[(channel_id, nonce)] = message
        return self._json(message)

    def history(self, channel_id: int, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """`GET /channels/{id}/messages?after=&limit=` as Discord answers it: newest first, no nonces."""
        later = [m for m in self.messages.get(channel_id, []) if int(m["id"]) > after][:limit]
        return [{k: v for k, v in m.items() if k != "nonce"} for m in reversed(later)]

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
