"""A fake Slack on 127.0.0.1: the Web API methods leaderwatch calls, Socket Mode, and response_url.

Real slack_bolt / slack_sdk code talks real HTTP and websocket traffic to it; every call is recorded
(method, parameters merged from query, form and JSON body, and the token). File uploads
(`files_upload_v2`) go through the three steps Slack has: files.getUploadURLExternal, the bytes
posted to the upload URL it returned, files.completeUploadExternal sharing the file in a channel.
Messages keep their threads, edits and deletions; Block Kit is checked against Slack's limits on the
way in (`block_kit_errors`); the App Home keeps the view last published for each user. Builders make
what Slack sends an app: signed slash commands, `block_actions` payloads, Events API callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from tests.helpers import Bucket, serve_loopback, wait_until

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T000"
TEAM_DOMAIN = "test"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
VERIFICATION_TOKEN = "legacy-verification-token"
CLIENT_ID = "1111.2222"
"""The OAuth client id and secret of the public app (oauth.v2.access checks them)."""
CLIENT_SECRET = "test-client-secret"

MAX_MESSAGE_BLOCKS = 50
"""Blocks in one message (chat.postMessage, chat.update, a response_url answer)."""
MAX_VIEW_BLOCKS = 100
"""Blocks in one view (views.publish)."""


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Team:
    """A workspace the public app can be installed in (OAuth, `FakeSlack.add_team`); `token` is its bot
    token once oauth.v2.access handed one out."""

    team_id: str
    name: str
    bot_user_id: str
    bot_id: str
    token: str | None = None

    @property
    def domain(self) -> str:
        return self.team_id.lower()


@dataclass
class Posted:
    """A message in a fake channel: the bot's (chat.postMessage, a file share) or a person's (`user_post`)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    user: str = BOT_USER_ID
    files: list[str] = field(default_factory=list)
    """Ids of the files shared with the message (an upload's `initial_comment`)."""
    thread_ts: str | None = None
    """The parent's ts when the message is a thread reply; None for a top-level message."""
    reply_broadcast: bool = False
    """A reply also sent to the channel: conversations.history lists it as well."""
    edits: list[dict[str, Any]] = field(default_factory=list)
    """Each edit in order, as the message read after it: `{"via", "ts", "text", "blocks", "metadata"}`
    (`via` is "chat.update" or "response_url")."""
    deleted: bool = False
    """Deleted by chat.delete, by a response_url `delete_original`, or by a person (`delete`)."""


@dataclass
class Ephemeral:
    """A message only `user` sees (a response_url answer that neither replaces nor deletes the original)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None


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
    return {"token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id, "channel_name": "general", "user_id": user_id, "user_name": user_name,
            "command": command, "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": "1.2.3"}


def form_body(payload: dict[str, str]) -> bytes:
    """A payload url-encoded, exactly as the bytes that get signed and sent."""
    return urlencode(payload).encode()


# -- Block Kit limits ------------------------------------------------------------------------------------

def block_kit_errors(blocks: object, *, max_blocks: int = MAX_MESSAGE_BLOCKS,
                     pointer: str = "/blocks") -> list[str]:
    """What Slack refuses in `blocks`, one `[ERROR] ... [json-pointer:...]` line each as in its
    `response_metadata.messages`; [] when Slack takes them.

    Checked: the number of blocks; an `actions` block's 25 elements; every interactive element (in
    `actions`, a section's `accessory`, an `input`) with its `action_id` (255 characters, unique in
    the message or view); `button` (text 75, value 2000, url 3000, style primary/danger, `confirm`);
    `overflow` (2 to 5 options); `static_select` (100 options or option groups, placeholder 150);
    options (text 75, value 150); `confirm` dialogs (title 100, text 300, confirm and deny 30).
    """
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] missing required field: type [json-pointer:{at}]")
            continue
        elements: list[tuple[str, object]] = []
        if block["type"] == "actions":
            listed = block.get("elements")
            if not isinstance(listed, list) or not 1 <= len(listed) <= 25:
                errors.append(f"[ERROR] must provide 1 to 25 items [json-pointer:{at}/elements]")
                listed = listed if isinstance(listed, list) else []
            elements += [(f"{at}/elements/{j}", element) for j, element in enumerate(listed)]
        for key in ("accessory", "element"):
            if key in block:
                elements.append((f"{at}/{key}", block[key]))
        for where, element in elements:
            errors += _element_errors(element, where, action_ids)
    return errors


def _too_long(value: object, limit: int, at: str) -> list[str]:
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{at}]"]
    return []


def _text_errors(text: object, limit: int, at: str, *, plain: bool = True) -> list[str]:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return [f"[ERROR] must be a {' or '.join(kinds)} text object [json-pointer:{at}]"]
    if not isinstance(text.get("text"), str) or not text["text"]:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{at}/text]"]
    return _too_long(text["text"], limit, f"{at}/text")


def _style_errors(element: dict[str, Any], at: str) -> list[str]:
    if "style" in element and element["style"] not in ("primary", "danger"):
        return [f"[ERROR] must be one of: primary, danger [json-pointer:{at}/style]"]
    return []


def _confirm_errors(confirm: object, at: str) -> list[str]:
    if not isinstance(confirm, dict):
        return [f"[ERROR] must be an object [json-pointer:{at}]"]
    return (_text_errors(confirm.get("title"), 100, f"{at}/title")
            + _text_errors(confirm.get("text"), 300, f"{at}/text", plain=False)
            + _text_errors(confirm.get("confirm"), 30, f"{at}/confirm")
            + _text_errors(confirm.get("deny"), 30, f"{at}/deny")
            + _style_errors(confirm, at))


def _option_errors(options: object, at: str, low: int, high: int) -> list[str]:
    if not isinstance(options, list) or not low <= len(options) <= high:
        return [f"[ERROR] must provide {low} to {high} items [json-pointer:{at}]"]
    errors: list[str] = []
    for k, option in enumerate(options):
        where = f"{at}/{k}"
        if not isinstance(option, dict):
            errors.append(f"[ERROR] must be an object [json-pointer:{where}]")
            continue
        errors += _text_errors(option.get("text"), 75, f"{where}/text")
        errors += _too_long(option.get("value"), 150, f"{where}/value")
    return errors


def _element_errors(element: object, at: str, action_ids: set[str]) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"[ERROR] missing required field: type [json-pointer:{at}]"]
    errors = _too_long(element.get("action_id"), 255, f"{at}/action_id")
    action_id = element.get("action_id")
    if isinstance(action_id, str):
        if action_id in action_ids:
            errors.append(f"[ERROR] duplicate action_id {action_id!r} [json-pointer:{at}/action_id]")
        action_ids.add(action_id)
    if "confirm" in element:
        errors += _confirm_errors(element["confirm"], f"{at}/confirm")
    kind = element["type"]
    if kind == "button":
        errors += _text_errors(element.get("text"), 75, f"{at}/text")
        errors += _too_long(element.get("value"), 2000, f"{at}/value")
        errors += _too_long(element.get("url"), 3000, f"{at}/url")
        errors += _style_errors(element, at)
    elif kind == "overflow":
        errors += _option_errors(element.get("options"), f"{at}/options", 2, 5)
    elif kind == "static_select":
        if "placeholder" in element:
            errors += _text_errors(element["placeholder"], 150, f"{at}/placeholder")
        if "option_groups" in element:
            groups = element["option_groups"]
            if not isinstance(groups, list) or not 1 <= len(groups) <= 100:
                errors.append(f"[ERROR] must provide 1 to 100 items [json-pointer:{at}/option_groups]")
            else:
                for g, group in enumerate(groups):
                    options = group.get("options") if isinstance(group, dict) else None
                    errors += _option_errors(options, f"{at}/option_groups/{g}/options", 1, 100)
        else:
            errors += _option_errors(element.get("options"), f"{at}/options", 1, 100)
    return errors


# -- what Slack sends the app ------------------------------------------------------------------------------

def block_actions_payload(action_id: str, value: str | None = None, *, selected: str | None = None,
                          message: dict[str, Any] | None = None, view: dict[str, Any] | None = None,
                          channel_id: str = "C0GENERAL", user_id: str = "U0USER",
                          response_url: str = "https://hooks.invalid/actions/1", trigger_id: str = "1.2.3",
                          team_id: str = TEAM_ID) -> dict[str, Any]:
    """The `block_actions` payload Slack posts when `user_id` uses the element `action_id` of `message`
    (a message as conversations.history shows it, e.g. `FakeSlack.message`) or of `view` (an App Home
    as views.publish returned it). Slack only sends elements the surface shows: ValueError otherwise.

    The action carries what the element carries: a button's `text` and `value` (`value` given here
    stands for a client showing an older rendering), an overflow's or static_select's
    `selected_option` (the option whose value is `selected`). A message's payload has `container`
    `{"type": "message", ...}`, `channel`, `message` and `response_url`; an App Home's has `container`
    `{"type": "view", "view_id"}` and `view`, and no response_url.
    """
    if (message is None) == (view is None):
        raise ValueError("give the message or the view the element is on")
    surface = dict(message if message is not None else view or {})
    seed = str(surface.get("ts") or surface.get("id"))  # Slack's surfaces have every block_id: fill them in
    surface["blocks"] = _with_block_ids(surface.get("blocks") or [], seed)
    block_id, element = _find_element(surface["blocks"], action_id)
    if element["type"] not in ("button", "overflow", "static_select"):
        raise ValueError(f"the fake builds no {element['type']} action")
    action: dict[str, Any] = {"type": element["type"], "action_id": action_id, "block_id": block_id,
                              "action_ts": f"{time.time():.6f}"}
    if element["type"] == "button":
        action["text"] = element["text"]
        if value is not None or "value" in element:
            action["value"] = element.get("value") if value is None else value
        if "style" in element:
            action["style"] = element["style"]
    else:
        groups = element.get("option_groups", [])
        options = element.get("options") or [o for group in groups for o in group["options"]]
        chosen = [o for o in options if o.get("value") == selected]
        if not chosen:
            raise ValueError(f"{action_id!r} offers no option {selected!r}")
        action["selected_option"] = chosen[0]
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": APP_ID, "token": VERIFICATION_TOKEN, "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": TEAM_DOMAIN}, "enterprise": None, "is_enterprise_install": False,
        "actions": [action]}
    if view is not None:
        payload.update(container={"type": "view", "view_id": surface["id"]}, view=surface)
        return payload
    container: dict[str, Any] = {"type": "message", "message_ts": surface["ts"], "channel_id": channel_id,
                                 "is_ephemeral": False}
    if surface.get("thread_ts") and surface["thread_ts"] != surface["ts"]:
        container["thread_ts"] = surface["thread_ts"]
    name = "directmessage" if channel_id.startswith("D") else channel_id.lower()
    payload.update(container=container, channel={"id": channel_id, "name": name}, message=surface,
                   state={"values": {}}, response_url=response_url)
    return payload


def _with_block_ids(blocks: list[dict[str, Any]], seed: str) -> list[dict[str, Any]]:
    """The blocks as Slack stores them: each without a `block_id` gets a generated one."""
    return [block if "block_id" in block else
            {**block, "block_id": hashlib.sha1(f"{seed}/{i}".encode()).hexdigest()[:5]}
            for i, block in enumerate(blocks)]


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        candidates += [block[key] for key in ("accessory", "element") if key in block]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block["block_id"]), element
    raise ValueError(f"no element with action_id {action_id!r} on this surface")


def interactive_body(payload: dict[str, Any]) -> bytes:
    """An interaction payload as Slack posts it to the Request URL: the form field `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def app_home_opened_event(user_id: str, tab: str = "home", *,
                          view: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Events API callback Slack sends when `user_id` opens the app's Home (or Messages) tab; the
    event carries `view` when a Home view was published for that user."""
    now = time.time()
    event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": "D" + user_id,
                             "tab": tab, "event_ts": f"{now:.6f}"}
    if view is not None:
        event["view"] = view
    return {"token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(now), "authorizations": [{
                "enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                "is_enterprise_install": False}],
            "is_ext_shared_channel": False}


def signed_event(event: dict[str, Any], secret: str = SIGNING_SECRET) -> tuple[bytes, dict[str, str]]:
    """An Events API callback as Slack posts it: the JSON body and its signed headers."""
    body = json.dumps(event).encode()
    return body, signed_headers(body, secret, content_type="application/json")


def _truthy(value: object) -> bool:
    """A boolean argument as Slack reads it: JSON true, or "true" / "1" from a form or a string."""
    return value is True or str(value).lower() in ("true", "1")


def _parsed(value: object) -> object:
    """A JSON argument: given as a JSON-encoded string (form) or as the value itself (JSON body)."""
    return json.loads(value) if isinstance(value, str) else value


def _ts_key(ts: object) -> Decimal:
    """A message timestamp to compare exactly (a float blurs the sixth decimal of today's seconds)."""
    return Decimal(str(ts or 0))



@dataclass
class FakeSlack:
    """The fake. `admins` / `owners` are user ids whose users.info says is_admin / is_owner."""

    admins: set[str] = field(default_factory=set)
    owners: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    channels: dict[str, list[Posted]] = field(default_factory=dict)
    """channel -> every message posted there, replies and deleted ones included, oldest first."""
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(hook, JSON body) of each answer posted to a response_url, as received."""
    ephemerals: list[Ephemeral] = field(default_factory=list)
    """Ephemeral messages a response_url answer sent about a message (`message_response_url`)."""
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    """file id -> the upload (files.getUploadURLExternal, the upload, files.completeUploadExternal)."""
    home: dict[str, dict[str, Any]] = field(default_factory=dict)
    """user id -> the App Home view last published for that user, as views.publish answered it."""
    home_publishes: dict[str, int] = field(default_factory=dict)
    """user id -> how many times views.publish succeeded for that user."""
    rate_limit_posts: int = 0
    """The next N chat.postMessage calls answer 429 with `Retry-After: {retry_after}`."""
    retry_after: str = "0"
    """The Retry-After of those 429s: delta seconds, or an HTTP date."""
    server_error_posts: int = 0
    """The next N chat.postMessage calls answer HTTP 500."""
    refuse_blocks: bool = False
    """chat.postMessage and chat.update answer `invalid_blocks` to any message with blocks."""
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    """(method, channel) -> the Slack error code that method answers for that channel ("" when the
    method names no channel, e.g. views.publish)."""
    bad_tokens: set[str] = field(default_factory=set)
    post_gate: asyncio.Event | None = None
    """When set, chat.postMessage stores the message, then waits for the gate before answering."""
    delays: dict[str, float] = field(default_factory=dict)
    """method -> seconds the fake takes to answer it (a slow Slack)."""
    clock: Callable[[], float] = time.time
    """Slack's clock (message timestamps); e2e tests share theirs with the service."""
    hello_count: int = 0
    method_limits: dict[str, float] = field(default_factory=dict)
    """method -> calls a minute the workspace allows (Slack's tiers; chat.postMessage's workspace-wide
    limit), in bursts of a second's worth; beyond, 429 with Retry-After. Empty (the default): none."""
    channel_rate: float | None = None
    """chat.postMessage calls a second to one channel (Slack: 1), in bursts of `channel_burst`; None
    (the default): no limit."""
    channel_burst: float = 3.0
    rate_limited: list[Call] = field(default_factory=list)
    """The calls answered 429 by those limits."""
    teams: dict[str, Team] = field(default_factory=dict)
    """team id -> a workspace the app can be installed in through OAuth (`add_team`)."""
    codes: dict[str, str] = field(default_factory=dict)
    """OAuth code -> the team it installs, as Slack's authorize page hands one out (`grant`); used once."""
    channel_teams: dict[str, str] = field(default_factory=dict)
    """channel id -> the team it is in: conversations.history with another team's token says
    channel_not_found (a channel not listed here is in every team, as with the single-workspace token)."""
    port: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._ts = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._files = itertools.count(1)
        self._views = itertools.count(1)
        self._hooks: dict[str, tuple[str, str, str]] = {}
        """response_url hook -> (channel, ts, user) of the message whose element that user used."""
        self.changed = asyncio.Condition()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._methods: dict[str, Callable[[dict[str, Any]], web.Response]] = {
            "auth.test": self._auth_test, "users.info": self._users_info,
            "conversations.history": self._history, "conversations.replies": self._replies,
            "conversations.open": self._open, "chat.update": self._update, "chat.delete": self._delete,
            "chat.getPermalink": self._permalink, "views.publish": self._publish,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "apps.connections.open": self._connections_open}


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
        """A response_url whose answers are only recorded (a slash command's)."""
        return f"{self.url}/response/{hook}"

    def message_response_url(self, channel: str, ts: str, user: str = "U0USER") -> str:
        """The response_url of an interaction by `user` with the message `ts`: its answers replace or
        delete that message, or post a new message, as Slack's do (see `_response`)."""
        hook = f"msg-{len(self._hooks) + 1}"
        self._hooks[hook] = (channel, ts, user)
        return self.response_url(hook)

    # -- what was recorded -----------------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def shared(self, channel: str | None = None) -> list[Upload]:
        """Files shared in a channel (or in any) by files.completeUploadExternal."""
        return [u for u in self.uploads.values() if u.channel is not None and channel in (None, u.channel)]

    def posts(self, channel: str | None = None) -> list[Posted]:
        """Messages in one channel (or all), top-level and thread replies, oldest first; deleted ones
        are gone (they stay in `channels`, marked `deleted`)."""
        found = self.channels.get(channel, []) if channel is not None else [
            m for msgs in self.channels.values() for m in msgs]
        return [m for m in found if not m.deleted]

    def top_level(self, channel: str) -> list[Posted]:
        """The channel's messages that are not thread replies, oldest first."""
        return [m for m in self.posts(channel) if m.thread_ts is None]

    def replies(self, channel: str, ts: str) -> list[Posted]:
        """The replies in the thread of message `ts`, oldest first (the parent not included)."""
        return sorted((m for m in self.posts(channel) if m.thread_ts == ts), key=lambda m: _ts_key(m.ts))

    def find(self, channel: str, ts: str) -> Posted | None:
        """The message `ts` of `channel`, deleted or not; None when there never was one."""
        return next((m for m in self.channels.get(channel, []) if m.ts == ts), None)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """Message `ts` as Slack shows it to apps (conversations.history, a block_actions `message`):
        blocks without a `block_id` get the one Slack would have generated. KeyError when it is gone."""
        posted = self.find(channel, ts)
        if posted is None or posted.deleted:
            raise KeyError(f"no message {ts} in {channel}")
        return self._as_json(posted, with_metadata=False)

    def block_actions(self, channel: str, ts: str, action_id: str, value: str | None = None, *,
                      selected: str | None = None, user_id: str = "U0USER") -> dict[str, Any]:
        """What Slack sends when `user_id` uses the element `action_id` of message `ts`: a
        `block_actions_payload` whose response_url answers act on that message."""
        return block_actions_payload(action_id, value, selected=selected, message=self.message(channel, ts),
                                     channel_id=channel, user_id=user_id,
                                     response_url=self.message_response_url(channel, ts, user_id))

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (a listener runs after the ack: wait for its side effect);
        an AssertionError showing the predicate when `timeout` seconds pass first."""
        await wait_until(predicate, timeout, changed=self.changed)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- what people do --------------------------------------------------------------------------------

    async def user_post(self, channel: str, text: str, *, user: str = "U0USER",
                        thread_ts: str | None = None) -> Posted:
        """A person posts `text` in `channel` (in the thread of `thread_ts` when given)."""
        posted = Posted(channel, self._next_ts(), text, None, None, user=user, thread_ts=thread_ts)
        self.channels.setdefault(channel, []).append(posted)
        await self._notify()
        return posted

    async def delete(self, channel: str, ts: str) -> None:
        """A person deletes message `ts` (an admin may delete the bot's): from then on history, replies,
        chat.update and chat.getPermalink know it no more."""
        posted = self.find(channel, ts)
        if posted is None:
            raise KeyError(f"no message {ts} in {channel}")
        posted.deleted = True
        await self._notify()

    # -- Web API ---------------------------------------------------------------------------------------

    @staticmethod
    def _json(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                            headers=headers)

    @classmethod
    def _error(cls, error: str, messages: list[str] | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error": error}
        if messages:
            body["response_metadata"] = {"messages": messages}
        return cls._json(body)

    def _next_ts(self) -> str:
        return f"{self.clock():.0f}.{next(self._ts):06d}"

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
        if method == "oauth.v2.access":
            try:
                return self._oauth_access(params, auth)
            finally:
                await self._notify()
        wait = self._limited(method, params, token)
        if wait > 0:
            self.rate_limited.append(self.calls[-1])
            await self._notify()
            return self._json({"ok": False, "error": "ratelimited"}, status=429,
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        try:
            return await self._answer(method, params, token)
        finally:
            await self._notify()

    def _limited(self, method: str, params: dict[str, Any], token: str | None = None) -> float:
        """0.0 when the rate limits let this call through, else the seconds until they would. Slack counts
        a method's limit per workspace: each installed team (by its token) has its own."""
        waits = [0.0]
        per_minute = self.method_limits.get(method)
        if per_minute:
            rate = per_minute / 60
            team = self.team_of(token)
            bucket = self._buckets.setdefault((method, f"team:{team.team_id}" if team else ""),
                                              Bucket(rate, max(1.0, rate)))
            waits.append(bucket.take())
        if method == "chat.postMessage" and self.channel_rate and waits[-1] == 0:
            channel = str(params.get("channel") or "")
            bucket = self._buckets.setdefault((method, channel),
                                              Bucket(self.channel_rate, self.channel_burst))
            waits.append(bucket.take())
        return max(waits)

    async def _answer(self, method: str, params: dict[str, Any], token: str | None) -> web.Response:
        want = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not token or not token.startswith(want) or token in self.bad_tokens:
            return self._error("invalid_auth")
        if method == "auth.test" and self.team_of(token) is not None:
            return self._team_auth_test(token)
        channel = str(params.get("channel") or params.get("channel_id") or "")
        team = self.team_of(token)
        if team is not None and self.channel_teams.get(channel, team.team_id) != team.team_id:
            return self._error("channel_not_found")  # another workspace's channel
        error = self.errors.get((method, channel))
        if error:
            return self._error(error)
        if method == "chat.postMessage":
            response = self._post_message(params)
            if self.post_gate is not None:
                await self._notify()
                await self.post_gate.wait()
            return response
        handler = self._methods.get(method)
        if handler is None:
            return self._json({"ok": False, "error": "unknown_method"}, status=404)
        return handler(params)

    def _auth_test(self, params: dict[str, Any]) -> web.Response:
        return self._json({"ok": True, "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "Test",
                           "user": "leaderwatch", "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                           "bot_id": BOT_ID})

    # -- OAuth: a public app installed in several workspaces ---------------------------------------------

    def add_team(self, team_id: str, name: str | None = None) -> Team:
        """A workspace that may install the app (its bot user `U<team>BOT`, bot `B<team>`)."""
        team = Team(team_id, name or f"Team {team_id}", f"U{team_id}BOT", f"B{team_id}")
        self.teams[team_id] = team
        return team

    def grant(self, team_id: str) -> str:
        """The code Slack's authorize page gives back when someone installs the app in `team_id`."""
        code = f"code-{team_id}-{uuid.uuid4().hex[:8]}"
        self.codes[code] = team_id
        return code

    def team_of(self, token: str | None) -> Team | None:
        """The installed workspace whose bot token this is, or None."""
        return next((t for t in self.teams.values() if token is not None and t.token == token), None)

    def tokens(self, method: str) -> list[str | None]:
        """The token each call of `method` came with, in order."""
        return [c.token for c in self.called(method)]

    def _oauth_access(self, params: dict[str, Any], auth: str) -> web.Response:
        """oauth.v2.access: the client's credentials (HTTP Basic, or form fields) and a granted code in,
        a new bot token for the code's team out."""
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if auth.startswith("Basic "):
            basic = base64.b64decode(auth.removeprefix("Basic ")).decode()
            client_id, _, client_secret = basic.partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return self._error("invalid_client_id" if client_id != CLIENT_ID else "bad_client_secret")
        team = self.teams.get(self.codes.pop(str(params.get("code") or ""), ""))
        if team is None:
            return self._error("invalid_code")
        team.token = f"xoxb-{team.team_id}-{uuid.uuid4().hex}"
        return self._json({
            "ok": True, "app_id": APP_ID, "authed_user": {"id": f"U{team.team_id}INSTALLER"},
            "scope": str(params.get("scope") or "commands,chat:write,users:read"), "token_type": "bot",
            "access_token": team.token, "bot_user_id": team.bot_user_id,
            "team": {"id": team.team_id, "name": team.name}, "enterprise": None,
            "is_enterprise_install": False})

    def _team_auth_test(self, token: str) -> web.Response:
        team = self.team_of(token)
        assert team is not None
        return self._json({"ok": True, "url": f"https://{team.domain}.slack.com/", "team": team.name,
                           "user": "leaderwatch", "team_id": team.team_id, "user_id": team.bot_user_id,
                           "bot_id": team.bot_id, "is_enterprise_install": False})

    def _users_info(self, params: dict[str, Any]) -> web.Response:
        user = str(params.get("user"))
        return self._json({"ok": True, "user": {
            "id": user, "name": user.lower(), "is_bot": False, "is_admin": user in self.admins or
            user in self.owners, "is_owner": user in self.owners, "is_primary_owner": False}})

    def _blocks(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, web.Response | None]:
        """A message's `blocks` argument, or the error Slack answers to it."""
        if params.get("blocks") is None:
            return None, None
        try:
            blocks = _parsed(params["blocks"])
        except json.JSONDecodeError:
            return None, self._error("invalid_blocks_format")
        errors = block_kit_errors(blocks)
        if self.refuse_blocks or errors:
            return None, self._error("invalid_blocks", errors)
        assert isinstance(blocks, list)
        return blocks, None

    def _post_message(self, params: dict[str, Any]) -> web.Response:
        if self.rate_limit_posts > 0:
            self.rate_limit_posts -= 1
            return self._json({"ok": False, "error": "ratelimited"}, status=429,
                              headers={"Retry-After": self.retry_after})
        if self.server_error_posts > 0:
            self.server_error_posts -= 1
            return self._json({"ok": False, "error": "internal_error"}, status=500)
        channel = str(params["channel"])
        if channel.startswith(("U", "W")):  # a user id: Slack posts in the app's DM with that user
            channel = "D" + channel
        blocks, refused = self._blocks(params)
        if refused is not None:
            return refused
        metadata = _parsed(params.get("metadata"))
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        posted = Posted(channel, self._next_ts(), str(params.get("text", "")), blocks,
                        metadata if isinstance(metadata, dict) else None, thread_ts=thread_ts,
                        reply_broadcast=thread_ts is not None and _truthy(params.get("reply_broadcast")))
        self.channels.setdefault(channel, []).append(posted)
        return self._json({"ok": True, "channel": channel, "ts": posted.ts,
                           "message": self._as_json(posted, with_metadata=True)})

    def _live(self, channel: str, ts: object) -> Posted | None:
        posted = self.find(channel, str(ts))
        return None if posted is None or posted.deleted else posted

    def _update(self, params: dict[str, Any]) -> web.Response:
        channel = str(params.get("channel"))
        posted = self._live(channel, params.get("ts"))
        if posted is None:
            return self._error("message_not_found")
        if posted.user != BOT_USER_ID:
            return self._error("cant_update_message")
        blocks, refused = self._blocks(params)
        if refused is not None:
            return refused
        if "text" in params:
            posted.text = str(params["text"])
        if params.get("blocks") is not None:  # absent: Slack keeps the blocks; [] removes them
            posted.blocks = blocks or None
        if params.get("metadata") is not None:  # absent: kept; {} removes it
            metadata = _parsed(params["metadata"])
            posted.metadata = metadata if isinstance(metadata, dict) and metadata else None
        self._edited(posted, "chat.update")
        return self._json({"ok": True, "channel": channel, "ts": posted.ts, "text": posted.text,
                           "message": self._as_json(posted, with_metadata=True)})

    def _edited(self, posted: Posted, via: str) -> None:
        posted.edits.append({"via": via, "ts": self._next_ts(), "text": posted.text, "blocks": posted.blocks,
                             "metadata": posted.metadata})

    def _delete(self, params: dict[str, Any]) -> web.Response:
        channel = str(params.get("channel"))
        posted = self._live(channel, params.get("ts"))
        if posted is None:
            return self._error("message_not_found")
        if posted.user != BOT_USER_ID:
            return self._error("cant_delete_message")
        posted.deleted = True
        return self._json({"ok": True, "channel": channel, "ts": posted.ts})

    def _permalink(self, params: dict[str, Any]) -> web.Response:
        channel = str(params.get("channel"))
        posted = self._live(channel, params.get("message_ts"))
        if posted is None:
            return self._error("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{posted.ts.replace('.', '')}"
        if posted.thread_ts is not None:
            link += f"?thread_ts={posted.thread_ts}&cid={channel}"
        return self._json({"ok": True, "channel": channel, "permalink": link})

    def _open(self, params: dict[str, Any]) -> web.Response:
        users = str(params.get("users") or "")
        if not users:
            return self._error("users_list_not_supplied")
        if "," in users:
            return self._error("fake_slack_opens_only_direct_messages")
        return self._json({"ok": True, "channel": {"id": "D" + users}})

    def _publish(self, params: dict[str, Any]) -> web.Response:
        user = str(params.get("user_id") or "")
        try:
            view = _parsed(params.get("view"))
        except json.JSONDecodeError:
            view = None
        if not user or not isinstance(view, dict) or view.get("type") != "home":
            return self._error("invalid_arguments",
                               ["[ERROR] views.publish takes a user_id and a view of type home"])
        errors = block_kit_errors(view.get("blocks"), max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
        if errors:  # views.* answer invalid_arguments where chat.* answer invalid_blocks
            return self._error("invalid_arguments", errors)
        current = self.home.get(user)
        if params.get("hash") and (current is None or params["hash"] != current["hash"]):
            return self._error("hash_conflict")
        view_id = current["id"] if current is not None else f"V{next(self._views):08d}"
        self.home[user] = {
            "id": view_id, "team_id": TEAM_ID, "type": "home", "close": None, "submit": None,
            "blocks": _with_block_ids(view["blocks"], view_id),
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "state": {"values": {}}, "hash": f"{self.clock():.0f}.{next(self._ts)}", "clear_on_close": False,
            "notify_on_close": False, "root_view_id": view_id, "previous_view_id": None, "app_id": APP_ID,
            "external_id": view.get("external_id", ""), "bot_id": BOT_ID}
        self.home_publishes[user] = self.home_publishes.get(user, 0) + 1
        return self._json({"ok": True, "view": self.home[user]})

    def _upload_url(self, params: dict[str, Any]) -> web.Response:
        file_id = f"F{next(self._files):08d}"
        self.uploads[file_id] = Upload(file_id, str(params["filename"]), int(params["length"]),
                                       params.get("alt_txt"))
        return self._json({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})

    def _connections_open(self, params: dict[str, Any]) -> web.Response:
        return self._json({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=t"})

    def _complete_upload(self, params: dict[str, Any]) -> web.Response:
        files = _parsed(params["files"])
        assert isinstance(files, list)
        shared = []
        for item in files:
            upload = self.uploads.get(item["id"])
            if upload is None or upload.data is None:
                return self._error("file_not_found")
            upload.title = item.get("title")
            shared.append(upload)
        channel = params.get("channel_id")
        if channel:
            comment = params.get("initial_comment")
            for upload in shared:
                upload.channel, upload.initial_comment = str(channel), comment
            thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
            self.channels.setdefault(str(channel), []).append(
                Posted(str(channel), self._next_ts(), str(comment or ""), None, None,
                       files=[u.file_id for u in shared], thread_ts=thread_ts))
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

    def _as_json(self, m: Posted, *, with_metadata: bool) -> dict[str, Any]:
        """A message as Slack's API shows it, with its thread's counts when it has replies."""
        message: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text, "user": m.user}
        if m.user == BOT_USER_ID:
            message.update(bot_id=BOT_ID, app_id=APP_ID)
        if m.blocks is not None:
            message["blocks"] = _with_block_ids(m.blocks, m.ts)
        if m.files:
            message["files"] = [{"id": f, "name": self.uploads[f].filename} for f in m.files]
        if m.edits:
            message["edited"] = {"user": m.user, "ts": m.edits[-1]["ts"]}
        if m.thread_ts is not None:
            message["thread_ts"] = m.thread_ts
            parent = self.find(m.channel, m.thread_ts)
            if parent is not None:
                message["parent_user_id"] = parent.user
            if m.reply_broadcast:
                message["subtype"] = "thread_broadcast"
        else:
            replies = self.replies(m.channel, m.ts)
            if replies:
                users = sorted({r.user for r in replies})
                message.update(thread_ts=m.ts, reply_count=len(replies), reply_users_count=len(users),
                               reply_users=users, latest_reply=replies[-1].ts)
        if with_metadata and m.metadata is not None:  # Slack sends metadata only when asked
            message["metadata"] = m.metadata
        return message

    @staticmethod
    def _page(messages: list[Posted], params: dict[str, Any], default_limit: int) -> tuple[list[Posted], str]:
        """One page of `messages` (cursor and limit) and the next cursor ("" on the last page)."""
        limit = int(params.get("limit") or default_limit)
        start = int(params.get("cursor") or 0)
        more = start + limit < len(messages)
        return messages[start:start + limit], str(start + limit) if more else ""

    @staticmethod
    def _after_oldest(m: Posted, params: dict[str, Any]) -> bool:
        """Whether `m` is in the range `oldest` opens: after it, or at it too when `inclusive`."""
        oldest = _ts_key(params.get("oldest"))
        return _ts_key(m.ts) > oldest or (_ts_key(m.ts) == oldest and _truthy(params.get("inclusive")))

    def _paged(self, key: str, messages: list[Posted], params: dict[str, Any],
               default_limit: int) -> web.Response:
        with_metadata = _truthy(params.get("include_all_metadata"))
        page, cursor = self._page(messages, params, default_limit)
        return self._json({"ok": True, key: [self._as_json(m, with_metadata=with_metadata) for m in page],
                           "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}})

    def _history(self, params: dict[str, Any]) -> web.Response:
        """Top-level messages and broadcast replies, newest first (other replies: conversations.replies)."""
        channel = str(params["channel"])
        listed = [m for m in self.posts(channel)
                  if (m.thread_ts is None or m.reply_broadcast) and self._after_oldest(m, params)]
        return self._paged("messages", sorted(listed, key=lambda m: _ts_key(m.ts), reverse=True), params, 100)

    def _replies(self, params: dict[str, Any]) -> web.Response:
        """A thread, the parent first then the replies oldest first; `ts` may name any of them."""
        channel = str(params.get("channel"))
        named = self._live(channel, params.get("ts"))
        parent = named if named is None or named.thread_ts is None else self._live(channel, named.thread_ts)
        if parent is None:
            return self._error("thread_not_found")
        replies = [m for m in self.replies(channel, parent.ts) if self._after_oldest(m, params)]
        return self._paged("messages", [parent, *replies], params, 1000)

    # -- response_url ----------------------------------------------------------------------------------

    async def _response(self, request: web.Request) -> web.Response:
        """An answer posted to a response_url, recorded. About a message (`message_response_url`) it acts
        as Slack does: `delete_original` deletes the message (then any text or blocks go out as a new
        message); otherwise, unless `replace_original` is false, the answer replaces the message (the
        default for interactions with a message); with `replace_original: false` it is a new message,
        in the channel for `response_type: in_channel`, else ephemeral to the user who acted."""
        hook = request.match_info["hook"]
        body = await request.json()
        self.responses.append((hook, body))
        try:
            if "blocks" in body and block_kit_errors(body["blocks"]):
                return web.Response(status=400, text="invalid_blocks")
            if hook in self._hooks:
                self._act_on_original(self._hooks[hook], body)
            return web.Response(text="ok")
        finally:
            await self._notify()

    def _act_on_original(self, bound: tuple[str, str, str], body: dict[str, Any]) -> None:
        channel, ts, user = bound
        original = self._live(channel, ts)
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        replace = body.get("replace_original")
        if _truthy(body.get("delete_original")):
            if original is not None:
                original.deleted = True
            if not (text or blocks):
                return
        elif replace is None or _truthy(replace):
            if original is not None:
                original.text, original.blocks = text, blocks
                original.metadata = body.get("metadata", original.metadata)
                self._edited(original, "response_url")
            return
        thread_ts = str(body["thread_ts"]) if body.get("thread_ts") else None
        if body.get("response_type") == "in_channel":
            self.channels.setdefault(channel, []).append(
                Posted(channel, self._next_ts(), text, blocks, body.get("metadata"), thread_ts=thread_ts))
        else:
            self.ephemerals.append(Ephemeral(channel, user, text, blocks, thread_ts))

    # -- Socket Mode -----------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": APP_ID}}))
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

    async def send_interactive(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an interaction (e.g. `block_actions_payload`) over Socket Mode; return the app's ack."""
        return await self.send_envelope(payload, "interactive", timeout)

    async def send_event(self, event: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send an Events API callback (e.g. `app_home_opened_event`) over Socket Mode; return the ack."""
        return await self.send_envelope(event, "events_api", timeout)
