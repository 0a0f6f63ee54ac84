"""What chat adapters share and no platform owns: usage lines as options, name suggestions, text cutting.

A command's usage line (`top BOARD [N] [GROUP]`) is its one definition of arguments; platforms with
typed arguments (Discord's slash command options) read it through `options_of` and rebuild the
command line with `command_line`, so the handler sees the same words as on Slack or the console.
`Names` answers "what could the user mean by this prefix" (autocomplete) from the same data the
commands resolve names against. `split_text` and `table_lines` cut text for platform limits;
`clean_text` (from `alerts.formatting`) takes out the characters no platform should show (NUL, controls,
bidi overrides): each adapter's one renderer calls it; `image_filename` names a reply's chart wherever it
is saved or uploaded.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from leaderwatch.alerts.formatting import Reply, clean_text, clip
from leaderwatch.alerts.kinds import KINDS
from leaderwatch.alerts.ruleset import params_of
from leaderwatch.bot.commands import COMMANDS, Command, CommandContext
from leaderwatch.bot.commands.configuration import SETTINGS
from leaderwatch.bot.commands.messages import similar
from leaderwatch.bot.commands.names import board_ids
from leaderwatch.storage.standings import current_models
from leaderwatch.storage.subscriptions import channel_subscriptions

NUMBER_PLACEHOLDERS = frozenset({"N", "DAYS"})
"""Placeholders that take a whole number (typed as integers where the platform has types)."""

PLACEHOLDER_HELP = {
    "BOARD": "a board: id, unique prefix or name, e.g. lmarena/text",
    "BOARD_PATTERN": "a board, a glob (lmarena/*) or a suite (vision, coding, all)",
    "SUITE": "a suite of boards: all, vision, coding, reasoning, lmarena",
    "N": "how many rows",
    "GROUP": "a group of models, e.g. china",
    "GROUP_A": "the first group, e.g. china",
    "GROUP_B": "the second group, e.g. west",
    "DAYS": "how many days back",
    "NAME": "a model: name, alias or unique prefix",
    "MODEL_A": "a model: name, alias or unique prefix",
    "MODEL_B": "a rival: a model, a group (e.g. china) or an organization (e.g. OpenAI)",
    "COMMAND": "a command",
    "RULE": "a rule kind, e.g. overtake",
    "KEY": "a channel setting",
    "VALUE": "the new value, or default",
    "DURATION": "how long: 90s, 30m, 1.5h, 2d, 1w",
    "DATE": "a date, YYYY-MM-DD: as things stood at the end of that day (UTC)",
    "KEY=VALUE": "rule parameters, e.g. top=5 groups=china,west",
}
"""How each usage-line placeholder is described next to a typed option (kept short: Discord allows 100)."""

NAMED = frozenset({"BOARD", "BOARD_PATTERN", "SUITE", "NAME", "MODEL_A", "MODEL_B", "COMMAND", "RULE",
                   "KEY", "KEY=VALUE"})
"""Placeholders whose possible values `Names` knows (and every GROUP...)."""

MAX_DESCRIPTION = 100
_TOKEN = re.compile(r"\[[^\]]*\]|\S+")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_=]*")


@dataclass(frozen=True, slots=True)
class Option:
    """One argument of a usage line: `BOARD`, `[N]`, `[RULE ...]`, `off|daily|weekly`, `BOARD_PATTERN|all`,
    `[at DATE]`.

    `placeholders` are the upper-case words (what the user fills in), `literals` the lower-case
    words taken as they are; an option with literals only is a closed choice. `keyword` is the word
    typed before the value (`at` of `[at DATE]`), or "".
    """

    name: str
    placeholders: tuple[str, ...]
    literals: tuple[str, ...]
    required: bool
    repeated: bool
    keyword: str = ""

    @property
    def is_number(self) -> bool:
        """A single whole number (`N`, `DAYS`)."""
        return (not self.repeated and not self.literals and bool(self.placeholders)
                and all(p in NUMBER_PLACEHOLDERS for p in self.placeholders))

    @property
    def choices(self) -> tuple[str, ...]:
        """The closed set of values (`off`, `daily`, `weekly`), or () when anything may be typed."""
        return () if self.placeholders else self.literals

    @property
    def description(self) -> str:
        """A one-line description for the platform's option help."""
        if not self.placeholders:
            text = f"one of {', '.join(self.literals)}"
        else:
            text = " or ".join(PLACEHOLDER_HELP.get(p, p.lower().replace("_", " "))
                               for p in self.placeholders)
            if self.literals:
                text += f", or {' or '.join(self.literals)}"
            if self.repeated:
                text += " (several, separated by spaces)"
        return clip(text[0].upper() + text[1:], MAX_DESCRIPTION)


def _slug(word: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_")


def options_of(usage: str, name: str | None = None) -> list[Option]:
    """The options of a usage line, in order, after the command's name (its first word, or `name`).

    `subscribe BOARD_PATTERN [RULE ...] [KEY=VALUE ...]` gives `board_pattern` (required), `rules`
    and `key_values` (optional, repeated: free text); `chart model NAME [DAYS]` with the name `chart
    model` gives `name` and `days`. ValueError for a line this grammar cannot read.
    """
    tokens = _TOKEN.findall(usage)
    words = name.split() if name else tokens[:1]
    if tokens[:len(words)] != words:
        raise ValueError(f"the usage line {usage!r} does not start with the command's name {name!r}")
    options: list[Option] = []
    for token in tokens[len(words):]:
        required = not token.startswith("[")
        inner = token if required else token[1:-1].strip()
        repeated = inner.endswith("...")
        inner = inner.removesuffix("...").strip()
        keyword = ""
        if not required and " " in inner and not repeated:  # `[at DATE]`: a word, then the value
            keyword, _, inner = inner.partition(" ")
            if not keyword.isalpha() or keyword != keyword.lower() or " " in inner:
                raise ValueError(f"cannot read the usage line {usage!r} at {token!r}")
        if not inner or " " in inner or "[" in inner or "]" in inner:
            raise ValueError(f"cannot read the usage line {usage!r} at {token!r}")
        words = inner.split("|")
        placeholders = tuple(w for w in words if _PLACEHOLDER.fullmatch(w))
        literals = tuple(w for w in words if w not in placeholders)
        if any(not w or w != w.lower() for w in literals):
            raise ValueError(f"cannot read the usage line {usage!r} at {token!r}")
        name = keyword or ("_or_".join(_slug(p) for p in placeholders) + ("s" if repeated else "")
                           if placeholders else "choice")
        taken = {o.name for o in options}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        options.append(Option(unique, placeholders, literals, required, repeated, keyword))
    return options


def command_line(name: str, options: Sequence[Option], values: Mapping[str, object]) -> str:
    """The command line the options spell: `top lmarena/text 5 china`.

    A single value stays one word for the command layer (`'Claude Opus 4'` is quoted); a repeated
    option's free text is passed as typed.
    """
    words = [name]
    for option in options:
        value = values.get(option.name)
        text = "" if value is None else str(value).strip()
        if text and option.keyword:
            words += [option.keyword, shlex.quote(text)]
        elif text:
            words.append(text if option.repeated else shlex.quote(text))
    return " ".join(words)


# -- suggestions ---------------------------------------------------------------------------------------

def _tier(candidate: str, wanted: str) -> int | None:
    low = candidate.lower()
    if low == wanted or low.rpartition("/")[2] == wanted:
        return 0
    if low.startswith(wanted):
        return 1
    if any(part.startswith(wanted) for part in re.split(r"[/\-_ .:]+", low)):
        return 2
    if wanted in low:
        return 3
    return None


def rank(typed: str, candidates: Iterable[str], limit: int) -> list[str]:
    """At most `limit` candidates for what was typed, best first.

    Exact (whole name, or the part after the last `/`), then prefixes, then a word of the name
    starting with it, then containing it (shorter names first within each). Only when nothing
    contains what was typed, close spellings (difflib), as "did you mean" would. With nothing
    typed, the candidates in their own order.
    """
    unique = list(dict.fromkeys(c for c in candidates if c))
    wanted = typed.strip().lower()
    if not wanted:
        return unique[:limit]
    scored = [(tier, len(c), i, c) for i, c in enumerate(unique) if (tier := _tier(c, wanted)) is not None]
    if scored:
        return [c for *_, c in sorted(scored)][:limit]
    lowered: dict[str, str] = {}
    for c in unique:
        lowered.setdefault(c.lower(), c)
    return [lowered[c] for c in similar(wanted, lowered, n=limit)]


class Names:
    """The names offered while typing: boards, patterns, groups, models, commands, rules, settings.

    Model names come from every board's newest snapshot, which is costly to read on each keystroke,
    so they are kept for `ttl` seconds (new models appear at most that much later).
    """

    def __init__(self, ctx: CommandContext, ttl: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ctx, self.ttl, self.monotonic = ctx, ttl, monotonic
        self._models: tuple[float, list[str]] | None = None

    def models(self) -> list[str]:
        """The names of the models on the boards' current tables (board by board, in rank order)."""
        now = self.monotonic()
        if self._models is None or now - self._models[0] >= self.ttl:
            self._models = (now, list(dict.fromkeys(current_models(self.ctx.db).values())))
        return self._models[1]

    def patterns(self, platform: str, channel_id: str) -> list[str]:
        """This channel's own patterns, then `*`, each source's glob, then every board."""
        ids = board_ids(self.ctx)
        followed = sorted({str(r["board_pattern"]) for r in
                           channel_subscriptions(self.ctx.db, platform, channel_id, include_disabled=True)})
        sources = sorted({f"{b.partition('/')[0]}/*" for b in ids if "/" in b})
        return [*followed, *sorted(self.ctx.suites), "*", *sources, *ids]

    def candidates(self, placeholder: str, platform: str, channel_id: str) -> list[str]:
        """Everything a placeholder may be, in a sensible default order."""
        if placeholder == "BOARD":
            return board_ids(self.ctx)
        if placeholder == "BOARD_PATTERN":
            return self.patterns(platform, channel_id)
        if placeholder == "SUITE":
            return sorted(self.ctx.suites)
        if placeholder.startswith("GROUP"):
            return sorted(self.ctx.groups)
        if placeholder in ("NAME", "MODEL_A"):
            return self.models()
        if placeholder == "MODEL_B":
            return [*sorted(self.ctx.groups), *self.models()]
        if placeholder == "COMMAND":
            return list(COMMANDS)
        if placeholder == "RULE":
            return list(KINDS)
        if placeholder == "KEY":
            return list(SETTINGS)
        if placeholder == "KEY=VALUE":
            return sorted({f"{p.name}=" for kind in KINDS for p in params_of(kind)})
        return []

    def suggest(self, option: Option, typed: str, platform: str, channel_id: str, limit: int) -> list[str]:
        """What the user may mean, best first; for a repeated option, its last word is completed."""
        head, last = "", typed
        if option.repeated:
            head, _, last = typed.rpartition(" ")
            head = f"{head} " if head else ""
        pool = [*option.literals]
        for placeholder in option.placeholders:
            pool += self.candidates(placeholder, platform, channel_id)
        if option.repeated:
            already = set(head.split())
            pool = [c for c in pool if c not in already]
        return [head + c for c in rank(last, pool, limit)]


def has_suggestions(option: Option) -> bool:
    """Whether `Names.suggest` can offer anything for an option (numbers and free values get nothing)."""
    return bool(option.literals) or any(p in NAMED or p.startswith("GROUP") for p in option.placeholders)


def admin_commands() -> list[Command]:
    """The configuration commands, in registration order."""
    return [c for c in COMMANDS.values() if c.configures]


# -- text ------------------------------------------------------------------------------------------------

def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, cut at line ends where possible."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # one line longer than a chunk: cut it hard
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        chunks.append(current)
    return [c for c in chunks if c.strip()]


def image_filename(reply: Reply, limit: int = 100) -> str:
    """A file name for the reply's image, from its title (`lmarena-text-...-2025-12-11.png`): ASCII only."""
    stem = re.sub(r"[^a-z0-9]+", "-", (reply.title or "").lower()).strip("-")[:limit].rstrip("-")
    return f"{stem or 'chart'}.png"


def table_lines(rows: Sequence[Sequence[str]], cell_limit: int = 60) -> list[str]:
    """A table as aligned lines, the first row being the header; cells cleaned (`clean_text`, one line
    each) and cut to `cell_limit`."""
    if not rows:
        return []
    width = max(len(r) for r in rows)
    cells = [[clip(clean_text(c).replace("\n", " ").replace("\t", " "), cell_limit) for c in r]
             + [""] * (width - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(width)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
