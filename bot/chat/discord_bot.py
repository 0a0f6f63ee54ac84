"""The Discord adapter: `/leaderwatch` and `/leaderwatch-admin` as discord.py app commands, embeds, alerts.

The three jobs of every adapter: an interaction becomes an `Invocation` (its options rebuilt into the
same command line Slack users type), `dispatch` answers it, and the neutral `Reply` becomes embeds
(its chart, if any, an attachment shown as the first embed's image, private answers included; its
buttons, message components on the first message). The subcommands are generated from the command
layer's registry and usage lines (`bot.chat`), so nothing here knows what a command does.
Configuration commands sit under `/leaderwatch-admin` because Discord applies
`default_member_permissions` per top-level command: Manage Channels hides them, and `can_configure`
checks the permission again when one runs. Discord's limits (3 s to answer, 2,000 characters of
content, 4,096 per embed description, 6,000 per message, 25 fields, 10 embeds, 25 autocomplete
choices, 5 buttons in a row of components) live here.

The bot only reads interactions: it has no message handler and no Message Content intent, so
messages from bots (ours included) never reach the command layer; interactions from bots cannot
happen, and `Invocation.is_bot` says so to `dispatch` anyway.

`DiscordSender` delivers alerts for the `Dispatcher` (see its docstrings for nonces and history),
follow-ups in a thread started on the story's first alert, and edits of it. The buttons under an
alert (`AlertControl`) are persistent: discord.py rebuilds them from their custom ids on every click,
so those of alerts posted before a restart work as well; `press` answers them, privately.

discord.py is imported nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import io
import logging
import re
import warnings
import zlib
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
import yarl

from leaderwatch.alerts.durations import DurationError, parse_duration
from leaderwatch.alerts.formatting import Action, Reply, clean_text, clip, plural
from leaderwatch.bot.chat.common import (
    Names,
    Option,
    admin_commands,
    command_line,
    has_suggestions,
    options_of,
    split_text,
    table_lines,
)
from leaderwatch.bot.chat.discord_api import (
    ACK_BUDGET_SECONDS,
    ADMIN_GROUP,
    CHART_FILE,
    EPHEMERAL_FLAG,
    GROUP,
    PLATFORM,
)
from leaderwatch.bot.commands import COMMANDS, Command, CommandContext, Invocation, apology, dispatch
from leaderwatch.bot.commands.actions import PREFIX, Press, action_id, configures, press, question
from leaderwatch.bot.pipeline.delivery import DeliveryError
from leaderwatch.bot.settings import HOW_TO_GET, ConfigError, Settings
from leaderwatch.sources.http import parse_retry_after

with warnings.catch_warnings():
    # discord.py imports audioop for voice (unused here), which Python 3.11 deprecates: keep that
    # warning out of the log and out of warnings-as-errors test runs, whoever imports this first.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import app_commands
    from discord.gateway import DiscordWebSocket

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
"""How long `start()` waits for the gateway's READY before going on (the client keeps trying)."""
MAX_RATELIMIT_WAIT_SECONDS = 60.0
"""discord.py waits out shorter rate limits in place; longer ones become `DeliveryError(retry_after)`,
so one rate-limited channel does not hold a dispatcher slot for minutes."""
TOKEN_RETRY_SECONDS = 900.0
"""A 401 on a send (token reset while running): alerts wait for the operator's fix, slowly retried."""
CLOUDFLARE_RETRY_SECONDS = 60.0
"""A 429 without Discord's `Via` header comes from Cloudflare, which names no wait: back off a minute."""
HISTORY_LIMIT = 300
"""How many messages after an uncertain send `already_delivered` reads (3 requests at most)."""

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_EMBEDS = 10
MAX_MESSAGE_TOTAL = 6000
MAX_CHOICES = 25
MAX_CHOICE = 100
MAX_COMMAND_DESCRIPTION = 100
MAX_SUBCOMMANDS = 25
MAX_NONCE = 25
MAX_THREAD_NAME = 100
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440
"""A story's thread hides after a day without messages (Discord's default; a follow-up brings it back)."""
# Ours, within those.
FOOTER_ROOM = 1000
"""Footers are cut to this, so a full description, a title and the footer always fit one embed."""
TABLE_CHUNK = 1900
"""Characters of a table per embed: three chunks fit one message's 6,000."""
MAX_REPLY_MESSAGES = 5
"""An answer or an alert is at most this many messages; the rest is cut with a note."""

# Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
THREAD_EXISTS = 160004
UNKNOWN_INTERACTION = 10062
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
WRONG_CHANNEL_TYPE = 50024
INVALID_FORM_BODY = 50035
CHANNEL_GONE_CODES = {UNKNOWN_CHANNEL: "Unknown Channel", MISSING_ACCESS: "Missing Access",
                      MISSING_PERMISSIONS: "Missing Permissions"}

DEFAULT_COLOUR = 0x5865F2
ERROR_COLOUR = 0xED4245
GROUP_COLOURS = {"china": 0xDE2910, "us": 0x3C3B6E, "europe": 0x003399, "west": 0x1F6FEB,
                 "open-weights": 0x2EA043, "proprietary": 0x8250DF}
PALETTE = (0xF0883E, 0x1ABC9C, 0xE91E63, 0xF1C40F, 0x9B59B6, 0x11806A, 0xA84300, 0x607D8B)
"""Colours of configured groups without their own, chosen by a stable hash of the name."""
BLANK = "\u200b"
"""Discord refuses empty field names and values; a zero-width space stands in."""

# User-facing texts of this adapter.
QUESTIONS_DESCRIPTION = "Ask leaderwatch about the AI leaderboards"
ADMIN_DESCRIPTION = "Choose what leaderwatch posts in this channel (Manage Channels)"
TRUNCATED = "… {parts} more part(s) not shown: Discord limits how long a reply may be. Ask for fewer rows."
VIEW_BOARD = "[View the board]({url})"
MENU_PLACEHOLDERS = {"mute": "Mute this board for…"}
"""What the menu of a button's choices shows before one is picked (else the button's label)."""


Choices = list[app_commands.Choice[str]]
Completer = Callable[[discord.Interaction[Any], str], Coroutine[Any, Any, Choices]]


# -- rendering -------------------------------------------------------------------------------------------

def discord_name(name: str) -> str:
    """A command's subcommand name: `chart model` is `chart-model` (Discord names have no spaces)."""
    return name.replace(" ", "-")


def to_discord_words(text: str) -> str:
    """`/leaderwatch subscribe` reads `/leaderwatch-admin subscribe` on Discord, `/leaderwatch chart model`
    reads `/leaderwatch chart-model` (same words after them)."""
    names = "|".join(re.escape(c.name) for c in admin_commands())
    if names:
        text = re.sub(rf"/{GROUP} (?=(?:{names})\b)", f"/{ADMIN_GROUP} ", text)
    for name in (c.name for c in COMMANDS.values() if " " in c.name):
        text = re.sub(rf"(/{GROUP}(?:-admin)? ){re.escape(name)}\b", rf"\g<1>{discord_name(name)}", text)
    return text


# Our own inline code (`lmarena/text`): inert on Discord, kept as it is. Outside it, a bare URL stays whole
# (a backslash would break it); every other markdown character is escaped, and so are the line-start ones
# (quotes, headings, lists, subtext), `<` (mentions, channels, timestamps and emoji render from it) and the
# `](` of a masked link (brackets alone stay: usage lines read `top BOARD [N]`). An underscore inside a
# word (BOARD_PATTERN, digest_hour) cannot start or end italics and stays too.
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_MARKDOWN = re.compile(r"(?P<url>https?://[^\s<>]+)|(?P<char>[\\*~|`<]|\](?=\()|(?<![^\W_])_|_(?![^\W_]))"
                       r"|^(?P<lead>[ \t]*)(?P<start>[>#+-])", re.MULTILINE)


def _escape_part(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m["url"]:
            return m["url"]
        if m["char"]:
            return "\\" + m["char"]
        return f"{m['lead']}\\{m['start']}"
    return _MARKDOWN.sub(one, text)


def discord_markdown(text: str) -> str:
    """Text as Discord shows it literally: cleaned (`clean_text`), its markdown and masked links escaped.

    Model names come from the origins: `**Best**`, `[link](https://evil.example)`, `||spoiler||` or
    `<@&role>` in one must read as typed. Inline code spans (ours, `like this`) are left alone: nothing
    renders inside them, and one that a name's backtick opens or closes still holds no markup.
    """
    text = clean_text(text)
    out: list[str] = []
    last = 0
    for code in _INLINE_CODE.finditer(text):
        out += [_escape_part(text[last:code.start()]), code.group()]
        last = code.end()
    out.append(_escape_part(text[last:]))
    return "".join(out)


def to_discord_reply(reply: Reply, *, table_in_code: bool = True) -> Reply:
    """The one place a Reply's text is made safe for Discord: markdown escaped where Discord renders it
    (title, text, fields; table cells too unless they go in code blocks), cleaned where it does not
    (footer, chart description)."""
    def table_cell(cell: str) -> str:
        return clean_text(cell) if table_in_code else discord_markdown(cell)
    return replace(
        reply, title=discord_markdown(reply.title) if reply.title else reply.title,
        text=discord_markdown(reply.text),
        fields=tuple(replace(f, name=discord_markdown(f.name), value=discord_markdown(f.value))
                     for f in reply.fields),
        table=tuple(tuple(table_cell(c) for c in row) for row in reply.table),
        footer=clean_text(reply.footer) if reply.footer else reply.footer)


def colour_of(reply: Reply) -> discord.Colour:
    """Red for errors; the group's colour when the reply is about one group; else Discord blurple."""
    if reply.error:
        return discord.Colour(ERROR_COLOUR)
    if reply.group:
        value = GROUP_COLOURS.get(reply.group)
        return discord.Colour(value if value is not None else
                              PALETTE[zlib.crc32(reply.group.encode()) % len(PALETTE)])
    return discord.Colour(DEFAULT_COLOUR)


def is_ephemeral(reply: Reply) -> bool:
    """Help, errors and settings only for the asker; answers to questions for the whole channel."""
    return reply.ephemeral or reply.error


def has_image(reply: Reply) -> bool:
    """Whether the reply's chart goes out with it (private answers too: ephemeral messages carry files)."""
    return reply.image is not None


def chart_file(reply: Reply) -> discord.File:
    """The reply's chart as an attachment (a new one per request: discord.py closes it once sent)."""
    assert reply.image is not None
    return discord.File(io.BytesIO(reply.image), filename=CHART_FILE,
                        description=clip(clean_text(reply.title or "chart"), 1024))


def choice_label(choice: str) -> str:
    """A choice as a menu shows it: `30d` reads `30 days`; anything else as it is."""
    try:
        length = parse_duration(choice)
    except DurationError:
        return choice
    return plural(length.days, "day") if length % timedelta(days=1) == timedelta(0) else choice


def first_extras(reply: Reply, *, edit: bool = False) -> dict[str, Any]:
    """What the first message of a reply carries besides its embeds, as discord.py keywords: its buttons
    (`view`) and its chart (`file`; `attachments` when `edit`ing a deferred answer, which has none yet).
    Only what the reply has: discord.py's defaults stand for the rest, so an edit keeps components."""
    extras: dict[str, Any] = {"view": to_view(reply.actions)} if reply.actions else {}
    if has_image(reply):
        extras |= {"attachments": [chart_file(reply)]} if edit else {"file": chart_file(reply)}
    return extras


def table_blocks(rows: Sequence[Sequence[str]], limit: int = TABLE_CHUNK) -> list[str]:
    """A table as code blocks of at most `limit` characters, each starting with the header row."""
    lines = [line.replace("```", "`\u200b``") for line in table_lines(rows)]
    if not lines:
        return []
    header, body = lines[0][: limit // 4], [line[: limit // 4] for line in lines[1:]]
    blocks: list[str] = []
    chunk: list[str] = []
    size = len(header) + len("```\n\n```")
    for line in body:
        if chunk and size + len(line) + 1 > limit:
            blocks.append("```\n" + "\n".join([header, *chunk]) + "\n```")
            chunk, size = [], len(header) + len("```\n\n```")
        chunk.append(line)
        size += len(line) + 1
    blocks.append("```\n" + "\n".join([header, *chunk]) + "\n```")
    return blocks


class _Embeds:
    """Embeds filled in order, a new one whenever the next part would break a per-embed limit."""

    def __init__(self, colour: discord.Colour, room: int) -> None:
        self.colour, self.room = colour, room
        self.embeds: list[discord.Embed] = []

    def new(self, **kwargs: Any) -> discord.Embed:
        embed = discord.Embed(colour=self.colour, **kwargs)
        self.embeds.append(embed)
        return embed

    def field(self, name: str, value: str, inline: bool) -> None:
        name = clip(name.strip() or BLANK, MAX_FIELD_NAME)
        chunks = split_text(value, MAX_FIELD_VALUE) or [BLANK]
        for i, chunk in enumerate(chunks):
            label = name if i == 0 else clip(f"{name} (cont.)", MAX_FIELD_NAME)
            embed = self.embeds[-1] if self.embeds else self.new()
            if len(embed.fields) >= MAX_FIELDS or len(embed) + len(label) + len(chunk) > self.room:
                embed = self.new()
            embed.add_field(name=label, value=chunk, inline=inline and len(chunks) == 1)


def _is_blank(embed: discord.Embed) -> bool:
    return not (embed.title or embed.description or embed.fields or embed.image.url)


def _pack(embeds: Sequence[discord.Embed]) -> list[list[discord.Embed]]:
    """Embeds grouped into messages of at most 10 embeds and 6,000 characters."""
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        if current and (len(current) >= MAX_EMBEDS or size + len(embed) > MAX_MESSAGE_TOTAL):
            messages.append(current)
            current, size = [], 0
        current.append(embed)
        size += len(embed)
    if current:
        messages.append(current)
    return messages


def _cut(messages: list[list[discord.Embed]], limit: int, colour: discord.Colour,
         footer: str) -> list[list[discord.Embed]]:
    """At most `limit` messages, the last ending with a note of what was left out."""
    kept = [list(m) for m in messages[:limit]]
    dropped = sum(len(m) for m in messages[limit:])
    last = kept[-1]
    while True:
        note = discord.Embed(colour=colour, description=TRUNCATED.format(parts=dropped))
        if footer:
            note.set_footer(text=footer)
        if len(last) < MAX_EMBEDS and sum(len(e) for e in last) + len(note) <= MAX_MESSAGE_TOTAL:
            last.append(note)
            return kept
        last.pop()
        dropped += 1


def footer_text(reply: Reply, ref: str | None) -> str:
    """The reply's footer (cut to FOOTER_ROOM) and the alert's reference, if any."""
    marker = f"ref {ref}" if ref else ""
    text = to_discord_words(reply.footer or "").strip()
    if not text:
        return marker
    if not marker:
        return clip(text, FOOTER_ROOM)
    return f"{clip(text, FOOTER_ROOM - len(marker) - 3)} · {marker}"


def to_messages(reply: Reply, ref: str | None = None,
                max_messages: int = MAX_REPLY_MESSAGES) -> list[list[discord.Embed]]:
    """A Reply as messages of embeds within Discord's limits: long parts split, too many cut.

    The title links to the board (`Reply.url`), the colour is the group's, fields stay fields,
    the table becomes code blocks (each with the header row), the footer (and `ref`, which marks
    an alert for `already_delivered`) ends the last embed. Text goes through `to_discord_reply` first.
    """
    reply = to_discord_reply(reply)
    colour = colour_of(reply)
    footer = footer_text(reply, ref)
    text = to_discord_words(reply.text).strip()
    if text and reply.error:
        text = f"⚠️ {text}"
    if reply.url and not reply.title:
        text = "\n".join(t for t in (text, VIEW_BOARD.format(url=reply.url)) if t)
    parts = _Embeds(colour, MAX_MESSAGE_TOTAL - len(footer))
    head = parts.new(title=clip(to_discord_words(reply.title), MAX_TITLE) if reply.title else None,
                     url=reply.url if reply.title and reply.url else None)
    if has_image(reply):
        head.set_image(url=f"attachment://{CHART_FILE}")
    for i, chunk in enumerate(split_text(text, MAX_DESCRIPTION)):
        if i == 0:
            head.description = chunk
        else:
            parts.new(description=chunk)
    for f in reply.fields:
        parts.field(to_discord_words(f.name), to_discord_words(f.value), f.inline)
    for block in table_blocks(reply.table):
        parts.new(description=block)
    embeds = [e for e in parts.embeds if not _is_blank(e)]
    if not embeds:  # Discord needs something to show
        embeds = [discord.Embed(colour=colour, description=BLANK)]
    if footer:
        embeds[-1].set_footer(text=footer)
    messages = _pack(embeds)
    return _cut(messages, max_messages, colour, footer) if len(messages) > max_messages else messages


def plain_content(reply: Reply, ref: str | None = None) -> str:
    """The reply as one plain message (when Discord refused our embeds), its reference kept."""
    suffix = f"\nref {ref}" if ref else ""
    plain = to_discord_reply(reply, table_in_code=False).plain()
    return clip(to_discord_words(plain), MAX_CONTENT - len(suffix)) + suffix


def to_payloads(reply: Reply) -> list[dict[str, Any]]:
    """A Reply as the JSON bodies of its messages, for the HTTP interactions endpoint (`discord_http`).

    The same embeds as every answer here (`to_messages`), the first message's buttons (`to_view`) and
    chart attachment (its bytes go as the request's `files[0]`), flags 64 when private (`is_ephemeral`).
    Mentions are off, as the client's `allowed_mentions` has them.
    """
    flags = {"flags": EPHEMERAL_FLAG} if is_ephemeral(reply) else {}
    bodies = [{"embeds": [e.to_dict() for e in embeds], "allowed_mentions": {"parse": []}} | flags
              for embeds in to_messages(reply)]
    if reply.actions:
        bodies[0]["components"] = to_view(reply.actions).to_components()
    if has_image(reply):
        bodies[0]["attachments"] = [{"id": 0, "filename": CHART_FILE,
                                     "description": clip(clean_text(reply.title or "chart"), 1024)}]
    return bodies


# -- interactions ----------------------------------------------------------------------------------------

def to_invocation(interaction: discord.Interaction[Any], text: str) -> Invocation:
    """An interaction as the neutral Invocation; Manage Channels in this channel may configure it."""
    user = interaction.user
    return Invocation(platform=PLATFORM, channel_id=str(interaction.channel_id or ""), user_id=str(user.id),
                      user_name=user.name, text=text, can_configure=interaction.permissions.manage_channels,
                      is_bot=user.bot)


def to_press(interaction: discord.Interaction[Any], custom_id: str, choice: str = "") -> Press:
    """A click as the neutral Press. A click under a follow-up in a story's thread is about the channel
    the story's alerts go to (the thread's parent): its subscriptions and mutes are the ones to change."""
    channel = interaction.channel
    channel_id = channel.parent_id if isinstance(channel, discord.Thread) else interaction.channel_id
    user = interaction.user
    return Press(PLATFORM, str(channel_id or ""), str(user.id), user.name, custom_id, choice,
                 interaction.permissions.manage_channels)


class Interactions:
    """Answers the generated subcommands, their autocomplete, and the buttons under alerts.

    `budget`: seconds a command or a click may take before the answer is deferred; 0 defers every one.
    """

    def __init__(self, ctx: CommandContext, names: Names, budget: float = ACK_BUDGET_SECONDS) -> None:
        self.ctx, self.names, self.budget = ctx, names, budget
        self.pending: set[asyncio.Task[Reply]] = set()

    async def run(self, interaction: discord.Interaction[Any], command: Command, text: str) -> None:
        """Dispatch one command line and answer it."""
        await self.respond(interaction, dispatch(self.ctx, to_invocation(interaction, text)),
                           f"/{_group_of(command)} {text}")

    async def may_click(self, interaction: discord.Interaction[Any], custom_id: str) -> bool:
        """Whether a click on an alert's button runs: configuration buttons (mute, unsubscribe) are for
        members with Manage Channels; anyone else gets the command layer's private refusal, which says
        who may, and nothing changes (`press` runs the command, which `dispatch` refuses)."""
        try:
            click = to_press(interaction, custom_id)
            if click.can_configure or not configures(custom_id):
                return True
            await self.respond(interaction, press(self.ctx, click), f"button {custom_id}", private=True)
        except Exception as exc:  # noqa: BLE001 - discord.py would drop it unlogged: log it, apologise
            await self.apologise(interaction, f"button {custom_id}", exc)
        return False

    async def click(self, interaction: discord.Interaction[Any], custom_id: str, choice: str = "") -> None:
        """A click on an alert's button, or a choice in its menu, answered privately: the button's question
        when it asks one (Discord has no confirmation dialog), else what `press` answers."""
        try:
            pressed = to_press(interaction, custom_id, choice)
            await self.respond(interaction, self._press(pressed), f"button {custom_id}", private=True)
        except Exception as exc:  # noqa: BLE001 - discord.py would only log it: the clicker gets an apology
            await self.apologise(interaction, f"button {custom_id}", exc)

    async def _press(self, click: Press) -> Reply:
        return question(self.ctx, click) or await press(self.ctx, click)

    async def respond(self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, Reply],
                      what: str, *, private: bool = False) -> None:
        """Answer with `work`'s reply: at once when it is ready within the budget, else defer (Discord
        shows "thinking…", to the asker alone when `private`) and answer when it is done. A failure of
        `work` is answered with an apology, in time as any answer."""
        task = asyncio.create_task(self._safely(work, what))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        try:
            done = (await asyncio.wait({task}, timeout=self.budget))[0] if self.budget > 0 else set()
            if task in done:
                await self.answer(interaction, task.result())
            else:
                await interaction.response.defer(ephemeral=private, thinking=True)
                await self.answer_late(interaction, await task, private=private)
        except discord.HTTPException as exc:
            late = " (answered after Discord's 3 s)" if exc.code == UNKNOWN_INTERACTION else ""
            logger.warning("Discord: could not answer %s%s: HTTP %d %s", what, late, exc.status, exc.text)

    async def _safely(self, work: Coroutine[Any, Any, Reply], what: str) -> Reply:
        try:
            return await work
        except Exception as exc:  # noqa: BLE001 - `dispatch` never raises; a click's own look-ups might
            return self.apology(what, exc)

    async def answer(self, interaction: discord.Interaction[Any], reply: Reply) -> None:
        """The reply as the interaction's response, its further messages as follow-ups."""
        first, *rest = to_messages(reply)
        ephemeral = is_ephemeral(reply)
        await interaction.response.send_message(embeds=first, ephemeral=ephemeral, **first_extras(reply))
        for embeds in rest:
            await interaction.followup.send(embeds=embeds, ephemeral=ephemeral)

    async def answer_late(self, interaction: discord.Interaction[Any], reply: Reply, *,
                          private: bool = False) -> None:
        """After a defer (`private`: an ephemeral one): the "thinking" message becomes the answer.

        Ephemerality is fixed when deferring: a private answer after a public defer (help, errors) is
        sent as ephemeral follow-ups once the public placeholder is gone, so it never shows to the channel.
        """
        first, *rest = to_messages(reply)
        ephemeral = is_ephemeral(reply)
        if ephemeral and not private:
            await interaction.delete_original_response()
            await interaction.followup.send(embeds=first, ephemeral=True, **first_extras(reply))
        else:
            await interaction.edit_original_response(embeds=first, **first_extras(reply, edit=True))
        for embeds in rest:
            await interaction.followup.send(embeds=embeds, ephemeral=ephemeral)

    async def complete(self, interaction: discord.Interaction[Any], option: Option,
                       typed: str) -> Choices:
        """Autocomplete: at most 25 names, best matches first."""
        try:
            found = self.names.suggest(option, typed or "", PLATFORM, str(interaction.channel_id or ""),
                                       MAX_CHOICES)
        except Exception:  # noqa: BLE001 - an empty list beats an error in the user's input box
            logger.exception("Discord: autocomplete for %s failed (typed %r)", option.name, typed)
            return []
        # A model's name as shown is cleaned like any text (no NUL or bidi override); the value stays the
        # name itself, which the command layer resolves.
        return [app_commands.Choice(name=clean_text(v), value=v) for v in found
                if 0 < len(v) <= MAX_CHOICE and clean_text(v).strip()][:MAX_CHOICES]

    async def on_error(self, interaction: discord.Interaction[Any],
                       error: app_commands.AppCommandError) -> None:
        """A failure outside `dispatch` (stale command signature, a bug here): logged, apologised for."""
        name = interaction.command.qualified_name if interaction.command else "?"
        await self.apologise(interaction, f"/{name}", error)

    @staticmethod
    def apology(what: str, error: BaseException) -> Reply:
        """Log a failure with its traceback under a new error id; the private answer telling that id (never
        the error)."""
        return apology(f"Discord: {what}", error, logger)

    async def apologise(self, interaction: discord.Interaction[Any], what: str, error: BaseException) -> None:
        """`apology` as the interaction's answer, unless it was answered already (or cannot be)."""
        reply = self.apology(what, error)
        if interaction.type is discord.InteractionType.autocomplete or interaction.response.is_done():
            return
        try:
            await self.answer(interaction, reply)
        except discord.HTTPException as exc:
            logger.warning("Discord: could not send the apology (%s): %s", reply.text, exc.text)


class LeaderwatchClient(discord.Client):
    """The service's discord.Client, holding the `Interactions` that answer clicks: discord.py builds an
    `AlertControl` from a custom id alone, and `interaction.client` is how it reaches the service."""

    def __init__(self, interactions: Interactions, **options: Any) -> None:
        super().__init__(**options)
        self.interactions = interactions


def interactions_of(interaction: discord.Interaction[Any]) -> Interactions:
    """What answers a click on an alert's buttons: the `Interactions` of the client that received it."""
    client = interaction.client
    if not isinstance(client, LeaderwatchClient):
        raise TypeError(f"alert buttons need a LeaderwatchClient, not {type(client).__name__}")
    return client.interactions


Control = discord.ui.Button[Any] | discord.ui.Select[Any]


class AlertControl(discord.ui.DynamicItem[Control], template=rf"{PREFIX}:[a-z]+:.+"):
    """A button or menu under an alert, whose custom id (`action_id`: `lw:mute:<event key>:7d`) says all
    a click needs. discord.py rebuilds it on each click from the clicked message's components, so it
    needs no view kept in memory and works on alerts posted before a restart."""

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> AlertControl:
        if not isinstance(item, discord.ui.Button | discord.ui.Select):
            raise TypeError(f"{item!r} is neither a button nor a menu")
        return cls(item)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await interactions_of(interaction).may_click(interaction, self.custom_id)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values if isinstance(self.item, discord.ui.Select) else []
        await interactions_of(interaction).click(interaction, self.custom_id, values[0] if values else "")


def to_view(actions: Sequence[Action]) -> discord.ui.View:
    """A reply's buttons as message components: one row of buttons (`action_id`), then for each button
    offering choices a menu of them (`action_id(action, "")`, the choice as the picked value).

    The view is stopped before it is sent. discord.py keeps a sent view to route its clicks, and when the
    view ends (it gives an ephemeral reply's view 15 minutes) unregisters every DynamicItem class in it,
    which would silence the buttons of all alerts. `AlertControl`, registered once by the service, routes
    our clicks: a finished view is kept nowhere.
    """
    view = discord.ui.View(timeout=None)
    for action in actions:
        style = discord.ButtonStyle.danger if action.danger else discord.ButtonStyle.secondary
        view.add_item(AlertControl(discord.ui.Button(label=action.label, style=style,
                                                     custom_id=action_id(action), row=0)))
    for row, action in enumerate((a for a in actions if a.choices), start=1):
        options = [discord.SelectOption(label=choice_label(c), value=c) for c in action.choices]
        placeholder = MENU_PLACEHOLDERS.get(action.name, action.label)
        view.add_item(AlertControl(discord.ui.Select(custom_id=action_id(action, ""), placeholder=placeholder,
                                                     options=options, row=row)))
    view.stop()
    return view


def _group_of(command: Command) -> str:
    return f"{ADMIN_GROUP if command.configures else GROUP} {command.name}"


def to_app_command(command: Command, interactions: Interactions) -> app_commands.Command[Any, ..., None]:
    """One subcommand generated from the command's usage line: typed options, choices, autocomplete."""
    options = options_of(command.usage, command.name)

    async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
        await interactions.run(interaction, command, command_line(command.name, options, values))

    def completer(option: Option) -> Completer:
        async def complete(interaction: discord.Interaction[Any], current: str) -> Choices:
            return await interactions.complete(interaction, option, current)
        return complete

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for option in options:
        annotation: Any = app_commands.Range[int, 1, None] if option.is_number else str
        default = inspect.Parameter.empty if option.required else None
        parameters.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
    # discord.py reads the options from the callback's signature: give it the generated one.
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = f"{re.sub('[- ]', '_', command.name)}_command"
    described: Any = app_commands.describe(**{o.name: o.description for o in options})(callback)
    choices = {o.name: [app_commands.Choice(name=c, value=c) for c in o.choices]
               for o in options if o.choices}
    if choices:
        described = app_commands.choices(**choices)(described)
    completions = {o.name: completer(o) for o in options
                   if not o.choices and not o.is_number and has_suggestions(o)}
    if completions:
        described = app_commands.autocomplete(**completions)(described)
    # Discord shows descriptions as plain text: no backticks.
    description = clip(command.summary.replace("`", "") or command.name, MAX_COMMAND_DESCRIPTION)
    return app_commands.Command(name=discord_name(command.name), description=description, callback=described)


def build_commands(tree: app_commands.CommandTree[Any],
                   interactions: Interactions) -> list[app_commands.Group]:
    """`/leaderwatch` (questions, for everyone) and `/leaderwatch-admin` (Manage Channels, guilds only)."""
    questions = app_commands.Group(name=GROUP, description=QUESTIONS_DESCRIPTION)
    admin = app_commands.Group(name=ADMIN_GROUP, description=ADMIN_DESCRIPTION, guild_only=True,
                               default_permissions=discord.Permissions(manage_channels=True))
    for command in COMMANDS.values():
        group = admin if command.configures else questions
        if len(group.commands) >= MAX_SUBCOMMANDS:
            raise RuntimeError(f"/{group.name} has {MAX_SUBCOMMANDS} subcommands, Discord's limit: "
                               f"`{command.name}` does not fit")
        group.add_command(to_app_command(command, interactions))
    tree.add_command(questions)
    tree.add_command(admin)
    tree.error(interactions.on_error)
    return [questions, admin]


# -- alerts ----------------------------------------------------------------------------------------------

def alert_ref(delivery_key: str) -> str:
    """The short reference an alert's footer carries (`lw` + 10 hex digits), found again in history."""
    return "lw" + hashlib.sha256(delivery_key.encode()).hexdigest()[:10]


def nonce_of(delivery_key: str, part: int) -> str:
    """The nonce of one message of an alert (at most 25 characters, as Discord requires)."""
    return ("lw" + hashlib.sha256(f"{delivery_key}|{part}".encode()).hexdigest())[:MAX_NONCE]


def _retry_after(exc: discord.HTTPException) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    asked = parse_retry_after(headers.get("Retry-After"))
    return CLOUDFLARE_RETRY_SECONDS if asked is None else asked


def to_delivery_error(exc: discord.HTTPException, action: str, channel_id: str) -> DeliveryError:
    """What a REST error means for a delivery: retry (when), give up on the channel, or neither."""
    what = f"{action}: HTTP {exc.status}" + (f" (code {exc.code})" if exc.code else "")
    if exc.code == UNKNOWN_MESSAGE:
        return DeliveryError(f"{what} Unknown Message: the message was deleted", message_gone=True)
    if isinstance(exc, discord.NotFound | discord.Forbidden):
        name = CHANNEL_GONE_CODES.get(exc.code) or clip(exc.text or "refused", 100)
        return DeliveryError(f"{what} {name}: channel {channel_id} was deleted, or the bot cannot see or "
                             f"post there (it needs View Channel, Send Messages, Embed Links and Read "
                             f"Message History)", channel_gone=True)
    if exc.status == 429:
        # discord.py waited out Discord's own 429s in place; this one is Cloudflare's, or retries ran out.
        return DeliveryError(f"{what}: rate limited", retryable=True, retry_after=_retry_after(exc))
    if exc.status >= 500:
        # Maybe posted anyway: no retry_after, so the dispatcher checks the history before resending.
        return DeliveryError(f"{what}: Discord server error", retryable=True)
    if exc.status == 401:
        logger.error("Discord: %s was refused with 401 Unauthorized: check DISCORD_TOKEN", action)
        return DeliveryError(f"{what}: unauthorized (check DISCORD_TOKEN)", retryable=True,
                             retry_after=TOKEN_RETRY_SECONDS)
    return DeliveryError(f"{what}: {clip(exc.text or 'refused', 200)}")


@contextlib.contextmanager
def delivery_errors(action: str, channel_id: str) -> Iterator[None]:
    """discord.py's failures of a delivery call as `DeliveryError`: whether, and when, to retry."""
    try:
        yield
    except discord.RateLimited as exc:
        raise DeliveryError(f"{action}: rate limited for {exc.retry_after:.0f}s", retryable=True,
                            retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        raise to_delivery_error(exc, action, channel_id) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DeliveryError(f"{action}: network error {type(exc).__name__}", retryable=True) from exc


class DiscordSender:
    """Delivers alerts to channels with `channel.send`, each message with a nonce and a footer ref.

    Two guards against a second copy. The nonce (derived from the delivery key, with
    `enforce_nonce`, which discord.py adds to every nonce) makes Discord answer a repeat within
    a few minutes with the message it already has: that covers discord.py's own in-place retries
    of 5xx answers. Nonces do not come back in a channel's history and are forgotten after
    minutes, so for a dispatcher retry or a restart, `already_delivered` reads the channel's
    recent history for our message whose footer carries the alert's `ref`: a reference users and
    the operator can quote too, at the cost of one history read per uncertain retry.

    A story's follow-ups go in a thread started on its first alert. Where the bot may not start or
    post in threads (Create Public Threads, Send Messages in Threads), they go in the channel as
    replies to that alert, which needs only Send Messages: a missing thread permission is no reason
    to count the channel as gone, which would disable it.
    """

    platform = PLATFORM
    calls: Mapping[str, tuple[str, ...]] = {
        "post": ("request",), "reply": ("request", "request"), "edit": ("request",), "image": (),
        "check": ("request",)}
    """The REST requests of each delivery step (a follow-up also opens its thread; a chart goes in the
    message), all under Discord's one global limit, which the dispatcher paces."""

    def __init__(self, client: discord.Client, history_limit: int = HISTORY_LIMIT) -> None:
        self.client, self.history_limit = client, history_limit
        self._threadless: set[int] = set()  # channels whose follow-ups could not go in a thread: logged

    async def send(self, channel_id: str, reply: Reply, delivery_key: str, thread: str | None = None) -> str:
        """Post one alert (one message, or a few when long; its chart and buttons on the first), or a
        follow-up in the thread of the message `thread` (the thread is started on it the first time);
        the id of the (first) message. DeliveryError says whether to retry, and `message_gone` when
        `thread`'s message was deleted."""
        with delivery_errors("send", channel_id):
            if thread:
                return await self._follow_up(int(channel_id), int(thread), reply, delivery_key)
            return await self._post(self.client.get_partial_messageable(int(channel_id)), reply, delivery_key)

    async def _follow_up(self, channel_id: int, message_id: int, reply: Reply, delivery_key: str) -> str:
        """A follow-up in the thread started on `message_id` (the thread has its id), else a reply to it."""
        if await self._open_thread(channel_id, message_id, reply):
            try:
                return await self._post(self.client.get_partial_messageable(message_id), reply, delivery_key)
            except discord.Forbidden as exc:
                if exc.code != MISSING_PERMISSIONS:
                    raise
                self._no_thread(channel_id, exc.text)
        reference = discord.MessageReference(message_id=message_id, channel_id=channel_id,
                                             fail_if_not_exists=False)
        channel = self.client.get_partial_messageable(channel_id)
        return await self._post(channel, reply, delivery_key, reference)

    async def _open_thread(self, channel_id: int, message_id: int, reply: Reply) -> bool:
        """Start the thread on a story's first alert unless it has one; False when the bot cannot.

        Through the REST route itself (`POST /channels/{c}/messages/{m}/threads`), not discord.py's
        `Message.create_thread`, which needs the channel in the gateway's cache: in http mode there is
        none. A deleted message raises Unknown Message, which is `message_gone`.
        """
        try:
            await self.client.http.start_thread_with_message(
                channel_id, message_id, name=clip(reply.title or "Follow-ups", MAX_THREAD_NAME),
                auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:
                return True
            if isinstance(exc, discord.Forbidden) and exc.code == MISSING_PERMISSIONS:
                self._no_thread(channel_id, exc.text)
                return False
            if exc.code == WRONG_CHANNEL_TYPE:
                self._no_thread(channel_id, "not a channel threads can start in")
                return False
            raise
        return True

    def _no_thread(self, channel_id: int, why: str) -> None:
        if channel_id not in self._threadless:
            self._threadless.add(channel_id)
            logger.warning("Discord: follow-ups in channel %s go in the channel as replies to their alert, "
                           "not in a thread (%s): give the bot Create Public Threads and Send Messages in "
                           "Threads there", channel_id, why)

    async def _post(self, channel: discord.PartialMessageable, reply: Reply, delivery_key: str,
                    reference: discord.MessageReference | None = None) -> str:
        try:
            return await self._post_parts(channel, reply, delivery_key, reference)
        except discord.Forbidden as exc:
            if not has_image(reply) or exc.code != MISSING_PERMISSIONS:
                raise
            # Refused before anything was posted: without Attach Files, the alert goes out alone.
            logger.warning("Discord: cannot attach the chart of alert %s in channel %s (the bot needs "
                           "Attach Files); sending the alert without it", delivery_key, channel.id)
            return await self._post_parts(channel, replace(reply, image=None), delivery_key, reference)

    async def _post_parts(self, channel: discord.PartialMessageable, reply: Reply, delivery_key: str,
                          reference: discord.MessageReference | None) -> str:
        ref = alert_ref(delivery_key)
        anchor: dict[str, Any] = {"reference": reference} if reference is not None else {}
        first = ""
        for part, embeds in enumerate(to_messages(reply, ref=ref)):
            try:
                if part == 0:
                    message = await channel.send(embeds=embeds, nonce=nonce_of(delivery_key, part),
                                                 **anchor, **first_extras(reply))
                else:
                    message = await channel.send(embeds=embeds, nonce=nonce_of(delivery_key, part))
            except discord.HTTPException as exc:
                if exc.status != 400 or exc.code != INVALID_FORM_BODY:
                    raise
                # Our embeds were refused: the alert still goes out, as plain text.
                logger.error("Discord refused the embeds of alert %s (%s); sending it as plain text",
                             delivery_key, clip(exc.text, 300))
                message = await channel.send(content=plain_content(reply, ref),
                                             nonce=nonce_of(delivery_key, -1), **({} if first else anchor))
                return first or str(message.id)
            first = first or str(message.id)
        return first

    async def edit(self, channel_id: str, message_ref: str, reply: Reply, delivery_key: str) -> None:
        """Rewrite an alert's (first) message in place, chart and buttons kept; DeliveryError as `send`."""
        message = self.client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_ref))
        embeds = to_messages(replace(reply, image=None), ref=alert_ref(delivery_key))[0]
        if has_image(reply):  # the chart attached when it was posted stays, shown in the first embed
            embeds[0].set_image(url=f"attachment://{CHART_FILE}")
        with delivery_errors("edit", channel_id):
            await message.edit(embeds=embeds, **first_extras(replace(reply, image=None)))

    async def already_delivered(self, channel_id: str, delivery_key: str, since: datetime,
                                thread: str | None = None) -> str | None:
        """The id of our message carrying this alert's ref posted since `since`, or None: in the channel,
        or for a follow-up (`thread`) in the thread of that message, then in the channel, where it went
        as a reply if the bot could not use the thread.

        Without Read Message History the answer is None (logged): the alert is sent again, and
        the nonce still stops a copy within Discord's few minutes.
        """
        with delivery_errors("history", channel_id):
            if thread and (found := await self._find(int(thread), delivery_key, since, in_thread=True)):
                return found
            return await self._find(int(channel_id), delivery_key, since)

    async def _find(self, channel_id: int, delivery_key: str, since: datetime, in_thread: bool = False
                    ) -> str | None:
        channel = self.client.get_partial_messageable(channel_id)
        marker = f"ref {alert_ref(delivery_key)}"
        me = self.client.user.id if self.client.user else None
        try:
            async for message in channel.history(limit=self.history_limit, after=since):
                if me is not None and message.author.id != me:
                    continue
                footers = [e.footer.text or "" for e in message.embeds]
                if any(marker in text for text in [message.content, *footers]):
                    return str(message.id)
            return None
        except discord.NotFound:
            if in_thread:  # the thread was never started: nothing was posted in it
                return None
            raise
        except discord.Forbidden as exc:
            logger.warning("Discord: cannot read the history of channel %s (%s); resending alert %s "
                           "unchecked", channel_id, exc.text, delivery_key)
            return None


# -- the service -----------------------------------------------------------------------------------------

def use_endpoints(settings: Settings) -> None:
    """Point discord.py at `LEADERWATCH_DISCORD_API_URL` / `_GATEWAY_URL` when set (tests, local trials).

    discord.py keeps both as class attributes, so this applies to the whole process: one Discord
    bot per process, as the composition root builds it.
    """
    if settings.discord_api_url:
        discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class DiscordService:
    """The Discord side of the running service: the client, its commands, and the alert sender.

    In `http` mode (LEADERWATCH_DISCORD_MODE) the client logs in and registers the commands over REST and
    never connects to the gateway: `discord_http` answers the interactions, this sender still delivers
    the alerts. Without the gateway's cache, follow-ups go in the channel as replies to their alert.

    A token Discord rejects is logged, naming DISCORD_TOKEN, and Discord stays off: the rest of the
    service keeps running. Commands are synced at start-up, to `settings.discord_guilds` when listed
    (instant, for trying things out), else globally (Discord may take a while to show changes).
    """

    def __init__(self, settings: Settings, ctx: CommandContext, *, budget: float = ACK_BUDGET_SECONDS,
                 ready_timeout: float = READY_TIMEOUT_SECONDS, guild_ready_timeout: float = 2.0,
                 reconnect: bool = True, names: Names | None = None) -> None:
        if not settings.discord_token:
            raise ConfigError(f"DISCORD_TOKEN: required for Discord ({HOW_TO_GET['DISCORD_TOKEN']})")
        self.settings, self.ready_timeout, self.reconnect = settings, ready_timeout, reconnect
        # leaderwatch has no voice: spare the operator discord.py's "voice will NOT be supported" lines.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        # Which guilds and channels we are in (threads start from a message whose guild is known);
        # interactions need no intent, messages are not read.
        intents.guilds = True
        self.interactions = Interactions(ctx, names or Names(ctx), budget)
        self.client = LeaderwatchClient(self.interactions, intents=intents,
                                        guild_ready_timeout=guild_ready_timeout,
                                        max_ratelimit_timeout=MAX_RATELIMIT_WAIT_SECONDS,
                                        allowed_mentions=discord.AllowedMentions.none())
        self.client.add_dynamic_items(AlertControl)
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self.groups = build_commands(self.tree, self.interactions)
        self.sender = DiscordSender(self.client)
        self.connection: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Log in, sync the commands, connect to the gateway; False (logged) when Discord refused us."""
        use_endpoints(self.settings)
        try:
            await self.client.login(self.settings.discord_token or "")
        except discord.LoginFailure:
            logger.error("Discord: DISCORD_TOKEN was rejected (401 Unauthorized); Discord stays off until "
                         "the token is fixed (%s)", HOW_TO_GET["DISCORD_TOKEN"])
            await self.client.close()
            return False
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            logger.error("Discord: cannot log in to check DISCORD_TOKEN (%s); Discord stays off",
                         _describe(exc))
            await self.client.close()
            return False
        await self.sync_commands()
        if self.settings.discord_mode == "http":
            # Discord posts interactions to /discord/interactions (`discord_http`); alerts go out over REST.
            logger.info("Discord: logged in as %s for REST only (LEADERWATCH_DISCORD_MODE=http): no gateway "
                        "connection; interactions arrive at /discord/interactions", self.client.user)
            return True
        self.connection = asyncio.create_task(self.client.connect(reconnect=self.reconnect))
        self.connection.add_done_callback(self._connection_ended)
        ready = asyncio.ensure_future(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self.connection}, timeout=self.ready_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            user = self.client.user
            logger.info("Discord: connected as %s (%s) in %d guild(s)", user, user.id if user else "?",
                        len(self.client.guilds))
            return True
        ready.cancel()
        if self.connection in done:
            await self.client.close()
            return False
        logger.warning("Discord: no READY from the gateway after %.0fs; it keeps trying", self.ready_timeout)
        return True

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, discord.LoginFailure | discord.PrivilegedIntentsRequired):
            logger.error("Discord: the gateway refused DISCORD_TOKEN or the intents (%s); Discord stays "
                         "off", exc)
        elif exc is not None:
            logger.error("Discord: the gateway connection ended: %s", _describe(exc))

    async def sync_commands(self) -> None:
        """Register the commands with Discord: to each configured guild, or globally."""
        targets: list[discord.Object | None] = [discord.Object(id=g) for g in self.settings.discord_guilds]
        for guild in targets or [None]:
            where = f"guild {guild.id}" if guild else "globally"
            try:
                if guild is not None:
                    self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden as exc:
                logger.error("Discord: cannot register the slash commands %s (%s): invite the bot to it with "
                             "the applications.commands scope (see README)", where, exc.text)
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                logger.error("Discord: registering the slash commands %s failed (%s); the ones Discord "
                             "already has stay", where, _describe(exc))
            else:
                logger.info("Discord: %d slash command(s) registered %s: %s", len(synced), where,
                            ", ".join(f"/{c.name}" for c in synced))

    async def stop(self) -> None:
        """Close the gateway connection and the HTTP session."""
        await self.client.close()
        if self.connection is not None:
            await asyncio.gather(self.connection, return_exceptions=True)
            self.connection = None


def _describe(exc: BaseException) -> str:
    """An exception as a short log text (never a token: discord.py keeps it out of messages)."""
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status} {clip(exc.text or '', 200)}"
    return f"{type(exc).__name__}: {exc}"[:300]
