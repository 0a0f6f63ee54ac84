"""The platform-neutral message (`Reply`), how an event reads as an alert, and how numbers and times read.

Each adapter renders a Reply its own way (Block Kit on Slack, embeds on Discord, plain text on the
console) and applies its platform's limits. `num`, `signed`, `day`, `moment` and `plural` (from `texts`)
are the one way leaderwatch writes numbers, dates and counts, in alerts, answers, charts and the terminal.
A model's name is written as the origin spells it, cut to `NAME_LIMIT` characters (`short_name`): an
alert about a 10,000-character name stays one message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from leaderwatch.alerts.kinds import title_of
from leaderwatch.alerts.models import Event
from leaderwatch.alerts.texts import day as day
from leaderwatch.alerts.texts import moment as moment
from leaderwatch.alerts.texts import num as num
from leaderwatch.alerts.texts import plural as plural
from leaderwatch.alerts.texts import signed as signed

NAME_LIMIT = 100
"""The most characters of a model's name an alert shows (the longest real names are about 70)."""

LINE_LIMIT = 400
"""The most characters of one line of a digest or of a story's updates."""


# C0 controls but tab and newline, DEL, C1 controls, the bidi marks, embeddings, overrides and isolates
# (U+061C, U+200E/F, U+202A-E, U+2066-9) and the BOM. A right-to-left override in a model's name turns
# the rest of an alert around ("...1# koot" reads as "took #1..."); NUL cuts some clients' text short.
# Zero-width spaces and joiners stay: emoji are built with them and the adapters use U+200B themselves.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                         "\ufeff]")


def clean_text(text: str) -> str:
    """`text` without NUL, other control characters (tab and newline kept) and bidi control characters:
    what every renderer (Slack, Discord, the charts) does to text from the origins before showing it."""
    return _UNSHOWABLE.sub("", text)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut (for names, labels, platform limits)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A name cut to `limit` characters, with an ellipsis when cut."""
    return clip(name, limit)


def _short_line(line: str) -> str:
    return short_name(line, LINE_LIMIT)


def with_short_names(text: str, *names: str | None) -> str:
    """`text` with each long name in it cut (`short_name`): the names an event's message was built from."""
    for name in names:
        if name and len(name) > NAME_LIMIT:
            text = text.replace(name, short_name(name))
    return text


@dataclass(frozen=True, slots=True)
class Field:
    """A labelled value (Block Kit field, embed field)."""

    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Action:
    """A button under a message. A click is handed to the command layer (`bot.commands.actions.press`)
    with `name` (what to do: `why`, `chart`, `mute`, `unsubscribe`), `ref` (what about: the alert's
    event key) and `choice`; `choices` are other values the button offers (a mute's 1d, 7d, 30d).
    `confirm` is a question to answer before it runs; `danger` marks a button that removes something.
    """

    name: str
    label: str
    ref: str
    choice: str = ""
    choices: tuple[str, ...] = ()
    confirm: str | None = None
    danger: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """A message, whatever the platform: title, text, fields, an optional table, a link, buttons.

    `table` rows are strings; the first row is the header. `ephemeral` replies are shown only to
    the person who asked. `group` names the group whose colour an adapter may use. `actions` are
    the buttons under it.
    """

    text: str
    title: str | None = None
    fields: tuple[Field, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    ephemeral: bool = False
    url: str | None = None
    group: str | None = None
    error: bool = False
    footer: str | None = None
    image: bytes | None = field(default=None, repr=False)
    actions: tuple[Action, ...] = ()

    def plain(self) -> str:
        """The whole reply as plain text (console, logs, fallbacks)."""
        parts = [f"*{self.title}*"] if self.title else []
        if self.text:
            parts.append(self.text)
        parts += [f"{f.name}: {f.value}" for f in self.fields]
        if self.table:
            widths = [max(len(row[i]) for row in self.table) for i in range(len(self.table[0]))]
            parts += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                      for row in self.table]
        if self.url:
            parts.append(self.url)
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)


def event_reply(event: Event, board_url: str = "", updates: Sequence[str] = (), status: str = "") -> Reply:
    """An alert: the event's message with its facts as fields; when its message is edited after
    follow-ups, the story's `updates` since (`alerts.stories.update_lines`) and its `status` in the
    title (`reversed on 2025-02-06`)."""
    fields = [Field("Board", event.board)]
    if event.model:
        fields.append(Field("Model", short_name(event.model)))
    if event.other:
        fields.append(Field("Passed", short_name(event.other)))
    if event.rank_after is not None:
        was = f" (was #{event.rank_before})" if event.rank_before is not None else ""
        fields.append(Field("Rank", f"#{event.rank_after}{was}"))
    if event.score_after is not None:
        was = f" (was {num(event.score_before)})" if event.score_before is not None else ""
        fields.append(Field("Score", f"{num(event.score_after)}{was}"))
    if event.confidence != "n/a":
        fields.append(Field("Confidence", event.confidence))
    if updates:
        fields.append(Field("Since then", "\n".join(_short_line(u) for u in updates), inline=False))
    group = event.groups[0] if event.groups else None
    title = f"{title_of(event.kind)} on {event.board}" + (f" ({status})" if status else "")
    text = with_short_names(event.message.removeprefix(f"{event.board}: "), event.model, event.other)
    return Reply(text=text, title=title, fields=tuple(fields), url=board_url or None, group=group,
                 footer=f"as of {moment(event.at)} · rule: {event.rule}")


def digest_reply(events: list[Event], period: str) -> Reply:
    """Several alerts collected into one message (`digest daily|weekly`)."""
    lines = [_short_line(f"• {day(e.at)} {with_short_names(e.message, e.model, e.other)}") for e in events]
    return Reply(text="\n".join(lines), title=f"leaderwatch {period} digest: {len(events)} alert(s)")
