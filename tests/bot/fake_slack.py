"""A fake Slack on 127.0.0.1: the Web API methods leaderwatch calls, Socket Mode, and response_url.

Real slack_bolt / slack_sdk code talks real HTTP and websocket traffic to it; every call is recorded
(method, parameters merged from query, form and JSON body, and the token). File uploads
(`files_upload_v2`) go through the three steps Slack has: files.getUploadURLExternal, the bytes
posted to the upload URL it returned, files.completeUploadExternal sharing the file in a channel.
Signing helpers build the requests Slack would send in HTTP mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from tests.helpers import serve_loopback, wait_until

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T000"
BOT_USER_ID = "U0BOT"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Posted:
    """A message in a fake channel."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    user: str = BOT_USER_ID
    files: list[str] = field(default_factory=list)
    """Ids of the files shared with the message (an upload's `initial_comment`)."""


@dataclass
class Upload:
    """A file uploaded with files_upload_v2, step by step: `data` once uploaded, `channel` once shared."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    initial_comment: str | None = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: `v0=` + HMAC-SHA256 of `v0:{ts}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """The headers Slack sends with `body` (signed with `secret` at `timestamp`, default now)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body),
            "Content-Type": content_type}


def slash_payload(text: str, *, channel_id: str = "C0GENERAL", user_id: str = "U0USER",
                  user_name: str = "ada", response_url: str = "https://hooks.invalid/commands/1",
                  command: str = "/leaderwatch") -> dict[str, str]:
    """A slash command payload as Slack sends it (the form fields)."""
    return {"token": "legacy-verification-token", "team_id": TEAM_ID, "team_domain": "test",
            "channel_id": channel_id, "channel_name": "general", "user_id": user_id, "user_name": user_name,
            "command": command, "text": text, "api_app_id": "A0APP", "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": "1.2.3"}


def form_body(payload: dict[str, str]) -> bytes:
    """A payload url-encoded, exactly as the bytes that get signed and sent."""
    return urlencode(payload).encode()


@dataclass
class FakeSlack:
    """The fake. `admins` / `owners` are user ids whose users.info says is_admin / is_owner."""

    admins: set[str] = field(default_factory=set)
    owners: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    channels: dict[str, list[Posted]] = field(default_factory=dict)
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    """file id -> the upload (files.getUploadURLExternal, the upload, files.completeUploadExternal)."""
    rate_limit_posts: int = 0
    """The next N chat.postMessage calls answer 429 with `Retry-After: {retry_after}`."""
    retry_after: str = "0"
    """The Retry-After of those 429s: delta seconds, or an HTTP date."""
    server_error_posts: int = 0
    """The next N chat.postMessage calls answer HTTP 500."""
    refuse_blocks: bool = False
    """chat.postMessage answers `invalid_blocks` to any message with blocks."""
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    """(method, channel) -> the Slack error code that method answers for that channel."""
    bad_tokens: set[str] = field(default_factory=set)
    post_gate: asyncio.Event | None = None
    """When set, chat.postMessage stores the message, then waits for the gate before answering."""
    delays: dict[str, float] = field(default_factory=dict)
    """method -> seconds the fake takes to answer it (a slow Slack)."""
    clock: Callable[[], float] = time.time
    """Slack's clock (message timestamps); e2e tests share theirs with the service."""
    hello_count: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._ts = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._files = itertools.count(1)
        self.changed = asyncio.Condition()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes([web.route("*", "/api/{method}", self._api), web.get("/link", self._socket),
                        web.post("/response/{hook}", self._response),
                        web.post("/upload/{file_id}", self._upload)])
        self._runner, self.port = await serve_loopback(app)
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """`LEADERWATCH_SLACK_API_URL` for this fake (with the trailing slash urljoin needs)."""
        return f"{self.url}/api/"

    def response_url(self, hook: str = "1") -> str:
        return f"{self.url}/response/{hook}"

    # -- what was recorded -----------------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def shared(self, channel: str | None = None) -> list[Upload]:
        """Files shared in a channel (or in any) by files.completeUploadExternal."""
        return [u for u in self.uploads.values() if u.channel is not None and channel in (None, u.channel)]

    def posts(self, channel: str | None = None) -> list[Posted]:
        """Messages the bot posted (in one channel, or all)."""
        if channel is not None:
            return list(self.channels.get(channel, []))
        return [m for msgs in self.channels.values() for m in msgs]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (a listener runs after the ack: wait for its side effect);
        an AssertionError showing the predicate when `timeout` seconds pass first."""
        await wait_until(predicate, timeout, changed=self.changed)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- Web API ---------------------------------------------------------------------------------------

    @staticmethod
    def _json(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                            headers=headers)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        self.calls.append(Call(method, params, token))
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        try:
            return await self._answer(method, params, token)
        finally:
            await self._notify()

    async def _answer(self, method: str, params: dict[str, Any], token: str | None) -> web.Response:
        want = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not token or not token.startswith(want) or token in self.bad_tokens:
            return self._json({"ok": False, "error": "invalid_auth"})
        channel = str(params.get("channel") or params.get("channel_id") or "")
        error = self.errors.get((method, channel))
        if error:
            return self._json({"ok": False, "error": error})
        if method == "auth.test":
            return self._json({"ok": True, "url": "https://test.slack.com/", "team": "Test",
                               "user": "leaderwatch", "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                               "bot_id": "B0BOT"})
        if method == "users.info":
            user = str(params.get("user"))
            return self._json({"ok": True, "user": {
                "id": user, "name": user.lower(), "is_bot": False, "is_admin": user in self.admins or
                user in self.owners, "is_owner": user in self.owners, "is_primary_owner": False}})
        if method == "chat.postMessage":
            response = self._post_message(params)
            if self.post_gate is not None:
                await self._notify()
                await self.post_gate.wait()
            return response
        if method == "conversations.history":
            return self._history(params)
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files):08d}"
            self.uploads[file_id] = Upload(file_id, str(params["filename"]), int(params["length"]),
                                           params.get("alt_txt"))
            return self._json({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})
        if method == "files.completeUploadExternal":
            return self._complete_upload(params)
        if method == "apps.connections.open":
            return self._json({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=t"})
        return self._json({"ok": False, "error": "unknown_method"}, status=404)

    def _post_message(self, params: dict[str, Any]) -> web.Response:
        if self.rate_limit_posts > 0:
            self.rate_limit_posts -= 1
            return self._json({"ok": False, "error": "ratelimited"}, status=429,
                              headers={"Retry-After": self.retry_after})
        if self.server_error_posts > 0:
            self.server_error_posts -= 1
            return self._json({"ok": False, "error": "internal_error"}, status=500)
        channel = str(params["channel"])
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if blocks is not None and (self.refuse_blocks or len(blocks) > 50):
            return self._json({"ok": False, "error": "invalid_blocks"})
        ts = f"{self.clock():.0f}.{next(self._ts):06d}"
        posted = Posted(channel, ts, str(params.get("text", "")), blocks, metadata)
        self.channels.setdefault(channel, []).append(posted)
        return self._json({"ok": True, "channel": channel, "ts": ts,
                           "message": {"type": "message", "text": posted.text, "ts": ts, "bot_id": "B0BOT"}})

    def _complete_upload(self, params: dict[str, Any]) -> web.Response:
        files = json.loads(params["files"]) if isinstance(params["files"], str) else params["files"]
        shared = []
        for item in files:
            upload = self.uploads.get(item["id"])
            if upload is None or upload.data is None:
                return self._json({"ok": False, "error": "file_not_found"})
            upload.title = item.get("title")
            shared.append(upload)
        channel = params.get("channel_id")
        if channel:
            ts = f"{self.clock():.0f}.{next(self._ts):06d}"
            comment = params.get("initial_comment")
            for upload in shared:
                upload.channel, upload.initial_comment = str(channel), comment
            self.channels.setdefault(str(channel), []).append(
                Posted(str(channel), ts, str(comment or ""), None, None, files=[u.file_id for u in shared]))
        return self._json({"ok": True, "files": [
            {"id": u.file_id, "name": u.filename, "title": u.title, "mimetype": "image/png", "size": u.length}
            for u in shared]})

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal handed out: the file's bytes are POSTed here."""
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload.data = await request.read()
        await self._notify()
        return web.Response(text=f"OK - {len(upload.data)}")

    def _history(self, params: dict[str, Any]) -> web.Response:
        channel = str(params["channel"])
        oldest = float(params.get("oldest") or 0)
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(params.get("limit") or 100)
        newest_first = sorted(self.channels.get(channel, []), key=lambda m: float(m.ts), reverse=True)
        newer = [m for m in newest_first if float(m.ts) >= oldest]
        start = int(params.get("cursor") or 0)
        page = newer[start:start + limit]
        messages = []
        for m in page:
            message: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "user": m.user,
                                       "bot_id": "B0BOT"}
            if with_metadata and m.metadata is not None:  # Slack sends metadata only when asked
                message["metadata"] = m.metadata
            messages.append(message)
        more = start + limit < len(newer)
        return self._json({"ok": True, "messages": messages, "has_more": more,
                           "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

    # -- response_url ----------------------------------------------------------------------------------

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append((request.match_info["hook"], await request.json()))
        await self._notify()
        return web.Response(text="ok")

    # -- Socket Mode -----------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0APP"}}))
        self.hello_count += 1
        self._connected.set()
        await self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                envelope_id = data.get("envelope_id")
                if envelope_id:
                    self.acks[envelope_id] = data
                    waiter = self._ack_waiters.pop(envelope_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(data)
                    await self._notify()
        finally:
            self._sockets.remove(ws)
        return ws

    async def ask_to_reconnect(self) -> None:
        """Slack's `disconnect` message (e.g. `refresh_requested`): the app must open a new connection."""
        await self._sockets[-1].send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested",
                                                     "debug_info": {"host": "fake"}}))

    async def connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send_envelope(self, payload: dict[str, Any], kind: str = "slash_commands",
                            timeout: float = 5.0) -> dict[str, Any]:
        """Send an envelope to the connected app and return its ack (`{"envelope_id", "payload"?}`)."""
        await self.connected(timeout)
        envelope_id = f"env-{next(self._envelopes)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[envelope_id] = waiter
        await self._sockets[-1].send_str(json.dumps({
            "envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind == "slash_commands", "retry_attempt": 0, "retry_reason": ""}))
        return await asyncio.wait_for(waiter, timeout)
