"""The command registry and `dispatch`, the one entry of the command layer.

An adapter turns a platform payload into an `Invocation`, awaits `dispatch(ctx, invocation)` and
renders the returned `Reply`. Commands register in one table through `@command`, which refuses a
name twice; a command's docstring is its help text. Two lanes for errors: a `UserError` is shown as
it is; anything else is logged with its traceback and the user gets an apology with an error id.
Configuration commands run in one transaction: a command that fails changes nothing.
"""

from __future__ import annotations

import inspect
import logging
import secrets
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from leaderwatch.alerts.formatting import Reply
from leaderwatch.alerts.models import Rule
from leaderwatch.alerts.suites import BUILT_IN, Suites
from leaderwatch.bot.commands.messages import (
    DATABASE_BUSY,
    DATABASE_DOWN,
    DISK_FULL,
    INTERNAL_ERROR,
    WHO_MANAGES,
    close_matches,
)
from leaderwatch.bot.runtime.metrics import UNKNOWN_COMMAND, Metrics
from leaderwatch.sources.base import Board
from leaderwatch.sources.identity import Group, Identity
from leaderwatch.storage.db import Database, is_disk_full, is_locked, is_unreachable
from leaderwatch.storage.snapshots import SnapshotCache

logger = logging.getLogger(__name__)


class UserError(Exception):
    """Bad input or not allowed: the message is shown to the user as it is."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """One `/leaderwatch ...` from a person, whatever the platform.

    `can_configure` is decided by the adapter (Slack workspace admins and owners or configured users;
    Discord members with Manage Channels; the console operator). Bots never reach `dispatch`.
    """

    platform: str
    channel_id: str
    user_id: str
    user_name: str
    text: str
    can_configure: bool = False
    is_bot: bool = False


@dataclass
class CommandContext:
    """What commands work with; built once in the composition root."""

    db: Database
    identity: Identity
    groups: Mapping[str, Group]
    default_rules: Sequence[Rule]
    boards: Mapping[str, Board]
    clock: Callable[[], datetime]
    on_config_change: Callable[[], None] = field(default=lambda: None)
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    metrics: Metrics | None = None
    intervals: Mapping[str, int] = field(default_factory=dict)
    """Seconds between polls of each polled source, by source name (to tell a stale board)."""
    suites: Suites = field(default_factory=lambda: dict(BUILT_IN))
    """Named sets of boards (`vision`), usable wherever a board pattern is."""
    max_subscriptions: int = 200
    """How many rules one channel may follow (`LEADERWATCH_MAX_SUBSCRIPTIONS`)."""


Handler = Callable[[CommandContext, Invocation, list[str]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    """A registered command: its name, usage line, whether it changes configuration, its handler."""

    name: str
    usage: str
    configures: bool
    handler: Handler

    @property
    def help(self) -> str:
        """The handler's docstring: the command's help text."""
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def summary(self) -> str:
        """The first line of the help text."""
        return self.help.splitlines()[0] if self.help else ""


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, configures: bool = False) -> Callable[[Handler], Handler]:
    """Register a command; a second command with the same name is a programming error."""
    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise RuntimeError(f"command `{name}` is registered twice")
        if not (handler.__doc__ or "").strip():
            raise RuntimeError(f"command `{name}` has no docstring (its help text)")
        COMMANDS[name] = Command(name, usage, configures, handler)
        return handler
    return register


def usage_error(name: str, problem: str) -> UserError:
    """A UserError that ends with the command's usage line."""
    return UserError(f"{problem}\nUsage: `/leaderwatch {COMMANDS[name].usage}`")


def split_words(text: str) -> list[str]:
    """The words of a command line, quotes respected (`model "GPT-4o (2024-05-13)"`)."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_line(text: str) -> tuple[str, list[str]]:
    """A command line's command name (lower case; `help` when empty) and its arguments.

    A name may take two words (`chart model`). Adapters use it too, e.g. to tell a configuration
    command before checking who may run it.
    """
    words = split_words(text.strip())
    if words and words[0].lower() in ("/leaderwatch", "leaderwatch"):  # pasted with the command itself
        words = words[1:]
    if len(words) > 1 and (two := f"{words[0]} {words[1]}".lower()) in COMMANDS:
        return two, words[2:]
    return (words[0].lower(), words[1:]) if words else ("help", [])


def database_trouble(exc: BaseException) -> Reply | None:
    """The private answer to a database the operator must see to (locked, disk full, server unreachable),
    which the user is told plainly (no error id: there is no bug to find); None for anything else."""
    if is_unreachable(exc):
        return Reply(text=DATABASE_DOWN, ephemeral=True, error=True)
    if is_locked(exc):
        return Reply(text=DATABASE_BUSY, ephemeral=True, error=True)
    if is_disk_full(exc):
        return Reply(text=DISK_FULL, ephemeral=True, error=True)
    return None


def apology(what: str, error: BaseException, log: logging.Logger) -> Reply:
    """The private answer to a failure outside `dispatch` (an adapter's own look-ups, a button): database
    trouble said plainly (one warning line in `log`), anything else an apology with a new error id (the
    traceback in `log` under that id, never shown). `what` says what failed ("Slack button ...")."""
    plainly = database_trouble(error)
    if plainly is not None:
        log.warning("%s failed: %s", what, error)
        return plainly
    error_id = secrets.token_hex(4)
    log.error("%s failed [error id %s]", what, error_id, exc_info=error)
    return Reply(text=INTERNAL_ERROR.format(error_id=error_id), ephemeral=True, error=True)


async def dispatch(ctx: CommandContext, inv: Invocation) -> Reply:
    """Run one command line; never raises, whatever the text."""
    if inv.is_bot:
        return Reply(text="", ephemeral=True)
    started, label, outcome = time.perf_counter(), UNKNOWN_COMMAND, "ok"
    try:
        name, args = parse_line(inv.text)
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise UserError(f"Unknown command `{name}`.{close_matches(name, sorted(COMMANDS))} "
                            "`/leaderwatch help` lists the commands.")
        label = cmd.name
        if cmd.configures and not inv.can_configure:
            raise UserError(f"Only channel managers can change this channel's configuration "
                            f"(`{cmd.name}`). {WHO_MANAGES.get(inv.platform, '')}"
                            f"See `/leaderwatch help {cmd.name}`.")
        if cmd.configures:
            before = ctx.db.conn.total_changes
            with ctx.db.atomic():
                reply = await cmd.handler(ctx, inv, args)
            if ctx.db.conn.total_changes != before:  # nothing to reload after `settings` or a no-op
                ctx.on_config_change()
            return reply
        return await cmd.handler(ctx, inv, args)
    except UserError as exc:
        outcome = "user_error"
        return Reply(text=str(exc), ephemeral=True, error=True)
    except Exception as exc:
        plainly = database_trouble(exc)
        if plainly is not None:  # the operator's problem, said plainly to the user
            outcome = "busy"
            logger.warning("command %s on %s:%s could not %s: %s", label, inv.platform, inv.channel_id,
                           "reach the database" if is_unreachable(exc) else "write", exc)
            return plainly
        outcome = "error"
        error_id = secrets.token_hex(4)
        logger.exception("command failed [error id %s]: platform=%s channel=%s text=%r", error_id,
                         inv.platform, inv.channel_id, inv.text)
        return Reply(text=INTERNAL_ERROR.format(error_id=error_id), ephemeral=True, error=True)
    except BaseException:  # cancelled (e.g. the adapter gave up waiting): counted, then passed on
        outcome = "cancelled"
        raise
    finally:
        _observe(ctx, inv, label, outcome, time.perf_counter() - started)


def _observe(ctx: CommandContext, inv: Invocation, name: str, outcome: str, seconds: float) -> None:
    """One log line and the metrics per command: who and where, never the arguments typed."""
    logger.info("command %s on %s:%s by %s: %s in %.0f ms", name, inv.platform, inv.channel_id, inv.user_id,
                outcome, seconds * 1000, extra={"command": name, "platform": inv.platform,
                                                "channel": inv.channel_id, "user": inv.user_id,
                                                "outcome": outcome, "seconds": round(seconds, 4)})
    if ctx.metrics is not None:
        ctx.metrics.command(name, inv.platform, seconds, outcome)
