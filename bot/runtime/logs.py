"""Logging: one handler on stderr, text or JSON lines, and no token or secret in any line.

`configure_logging` installs the handler on the root logger, so every library's records pass through
`RedactingFilter`: it replaces each configured secret value (SLACK_BOT_TOKEN, SLACK_APP_TOKEN,
SLACK_SIGNING_SECRET, DISCORD_TOKEN) and anything shaped like a Slack or Discord token or a secret
URL (Discord interaction and webhook tokens, Slack response URLs and Socket Mode tickets) in the
message, its arguments, extra fields, and the exception and stack text, before any handler formats
it. slack_sdk and discord.py log request URLs and bodies at DEBUG; the filter is what makes `-v`
safe to paste into an issue.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from leaderwatch.bot.settings import Settings

REDACTED = "[redacted]"
SECRET_SETTINGS = ("slack_bot_token", "slack_app_token", "slack_signing_secret", "slack_client_secret",
                   "secret_key", "discord_token", "github_token")
"""The Settings fields whose values never appear in a log line."""
MIN_SECRET_LENGTH = 6
"""Shorter configured values are not replaced everywhere (they would blank out common words);
no real token or secret is that short."""

TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack bot, user, app-config, refresh and legacy tokens; app-level tokens (Socket Mode).
    (re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),
    # Discord bot tokens: base64(user id) . base64(timestamp) . HMAC.
    (re.compile(r"\b[A-Za-z0-9_-]{20,30}\.[A-Za-z0-9_-]{5,8}\.[A-Za-z0-9_-]{25,}"), REDACTED),
    # Authorization header values, however a library prints them.
    (re.compile(r"\b(Bot|Bearer)\s+[A-Za-z0-9._~+/=-]{16,}"), rf"\1 {REDACTED}"),
    # Discord interaction and webhook tokens travel in URL paths.
    (re.compile(r"(/interactions/\d+/)[A-Za-z0-9_.-]+"), rf"\1{REDACTED}"),
    (re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.-]+"), rf"\1{REDACTED}"),
    # Slack response_url and incoming webhooks are bearer URLs; Socket Mode URLs carry a ticket.
    (re.compile(r"(hooks\.slack\.com/)[^\s'\"<>]+"), rf"\1{REDACTED}"),
    (re.compile(r"([?&]ticket=)[^&\s'\"<>]+"), rf"\1{REDACTED}"),
)

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class Redactor:
    """Replaces configured secret values and token-shaped text with `[redacted]`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        self.secrets = sorted(kept, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` without secrets."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in TOKEN_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def value(self, value: Any) -> Any:
        """An extra field's value without secrets (strings and containers of them)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return self(str(value))


class RedactingFilter(logging.Filter):
    """On a handler: rewrites each record it handles so no secret reaches this or any later handler.

    The message is rendered with its arguments first (a token can hide in an argument, or in
    `repr()` of one), then redacted; the exception text likewise.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - bad arguments: logging would print them raw to stderr
            message = f"{record.msg!r} (unformattable log arguments {record.args!r})"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and not key.startswith("_"):
                setattr(record, key, self.redact.value(value))
        return True


_EXCEPTIONS = logging.Formatter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING,
                 "apscheduler.executors.default": logging.WARNING, "apscheduler.scheduler": logging.WARNING,
                 "psycopg.pool": logging.ERROR}
"""Libraries' loggers held at a level: one line per HTTP request or scheduler tick drowns the useful lines,
and psycopg's pool warns (in three lines) at each failed reconnection while PostgreSQL is down, which the
leader loop, the failed writes and /healthz already say once."""


def secrets_of(settings: Settings) -> list[str]:
    """The configured secret values, and the password of a PostgreSQL `LEADERWATCH_DB` URL."""
    found = [v for v in (getattr(settings, name) for name in SECRET_SETTINGS) if v]
    password = urlsplit(str(settings.db_path)).password if "://" in str(settings.db_path) else None
    return [*found, unquote(password)] if password else found


def build_handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """The leaderwatch handler: redacting, text or JSON lines (`LEADERWATCH_LOG_FORMAT`)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter(Redactor(secrets_of(settings))))
    handler.set_name("leaderwatch")
    return handler


def configure_logging(settings: Settings, verbose: bool, stream: IO[str] | None = None) -> logging.Handler:
    """Install the leaderwatch handler on the root logger (replacing one installed before) and set levels.

    Other root handlers are kept (a test's capture handler, say); they see records after ours has
    redacted them only if they come after it, so production runs with ours alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "leaderwatch"]:
        root.removeHandler(old)
        old.close()
    handler = build_handler(settings, stream)
    root.handlers.insert(0, handler)  # first, so the records later handlers see are already redacted
    root.setLevel(logging.DEBUG if verbose else getattr(logging, settings.log_level))
    for noisy, level in QUIET_LOGGERS.items():
        logging.getLogger(noisy).setLevel(level)
    return handler
