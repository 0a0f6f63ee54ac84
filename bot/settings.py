"""Settings: one frozen object built once from environment variables and the TOML config file."""

from __future__ import annotations

import math
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderwatch.alerts.durations import GRAMMAR, DurationError, parse_duration
from leaderwatch.alerts.suites import BUILT_IN, SuiteError, make_suites
from leaderwatch.storage.engine import NOT_A_URL, is_postgres_conninfo

DEFAULT_DB = "leaderwatch.db"
DEFAULT_CONFIG = "leaderwatch.toml"
DEFAULT_STALE_AFTER = 3.0
DEFAULT_MAX_SUBSCRIPTIONS = 200
DEFAULT_ALERTS_PER_POLL = 20
DELIVERY_DEFAULTS: Mapping[str, float] = {
    "slots": 8, "send_timeout": 30.0, "channel_interval": 1.0, "discord_requests_per_second": 50.0,
    "slack_messages_per_minute": 300.0, "slack_uploads_per_minute": 100.0,
    "slack_updates_per_minute": 50.0, "slack_history_per_minute": 50.0}
"""`[delivery]`: sends at once; seconds before a send is cut off; seconds between two messages to one
channel (Slack: one a second); Discord's 50 requests a second per bot; Slack's workspace-wide rates of
chat.postMessage ("several hundred a minute"), the files upload methods (tier 4), chat.update and
conversations.history / replies (tier 3)."""


HOW_TO_GET = {
    "SLACK_BOT_TOKEN": "Slack app > OAuth & Permissions > Bot User OAuth Token, xoxb-...",
    "SLACK_APP_TOKEN": "Slack app > Basic Information > App-Level Tokens, scope connections:write, xapp-...",
    "SLACK_SIGNING_SECRET": "Slack app > Basic Information > App Credentials > Signing Secret",
    "SLACK_CLIENT_ID": "Slack app > Basic Information > App Credentials > Client ID",
    "SLACK_CLIENT_SECRET": "Slack app > Basic Information > App Credentials > Client Secret",
    "DISCORD_TOKEN": "Discord Developer Portal > Applications > your application > Bot > Reset Token",
    "DISCORD_PUBLIC_KEY": "Discord Developer Portal > Applications > your application > General "
                          "Information > Public Key (64 hex digits)",
}
"""Where each chat secret is found, for every message that asks for one (settings, adapters, doctor)."""


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says how to fix it."""


def url_problem(url: object) -> str | None:
    """What is wrong with a source URL setting (None when it is a well-formed http(s) URL)."""
    if not isinstance(url, str) or not url.strip():
        return f"expected a quoted http(s) URL such as \"https://mirror.example/data.json\", got {url!r}"
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return (f"{url!r} is not an http(s) URL; write the whole address, e.g. "
                f"\"https://mirror.example/path\" (remove the setting to use the source's own)")
    return None


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Per-source polling settings (`[sources.NAME]` in the config file)."""

    enabled: bool = True
    interval_seconds: int | None = None  # None: the source's own default
    url: str | None = None
    """`url = "..."`: where the source reads its data (a mirror or a proxy); None: the source's own."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable; built by `load_settings`."""

    db_path: str = DEFAULT_DB
    db_timeout: float = 10.0
    """LEADERWATCH_DB_TIMEOUT: seconds a write waits for another program's lock on the database."""
    config_path: str | None = None
    recordings: str | None = None
    http_port: int | None = None
    slack_mode: str = "socket"
    log_level: str = "INFO"
    log_format: str = "text"
    retention_days: int | None = None
    retention_period: str = "day"
    stale_after: float = DEFAULT_STALE_AFTER
    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_client_id: str | None = None
    """SLACK_CLIENT_ID and SLACK_CLIENT_SECRET: a public app that workspaces install through OAuth
    (`/slack/install`), each with its own bot token, instead of one SLACK_BOT_TOKEN."""
    slack_client_secret: str | None = None
    slack_redirect_uri: str | None = None
    """SLACK_REDIRECT_URI: the OAuth redirect URL (https://HOST/slack/oauth_redirect) when the app lists
    several; None: Slack uses the one the app lists."""
    secret_key: str | None = None
    """LEADERWATCH_SECRET_KEY: encrypts the installed workspaces' bot tokens at rest (OAuth installs)."""
    discord_token: str | None = None
    discord_mode: str = "gateway"
    """LEADERWATCH_DISCORD_MODE: `gateway` (discord.py connects out) or `http` (Discord posts interactions to
    `/discord/interactions`; no gateway connection, alerts go out over REST with DISCORD_TOKEN)."""
    discord_public_key: str | None = None
    """DISCORD_PUBLIC_KEY: the application's Ed25519 public key (hex) that signs HTTP interactions."""
    discord_application_id: str | None = None
    """DISCORD_APPLICATION_ID: when set, HTTP interactions for another application are refused."""
    github_token: str | None = None
    """GITHUB_TOKEN: raises GitHub's API limit for `backfill` (60 requests an hour without it)."""
    slack_api_url: str | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    suites: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(BUILT_IN))
    """Named sets of board patterns: the built-in suites and the config's `[suites.NAME] boards`."""
    rules: tuple[Mapping[str, Any], ...] = ()
    slack_admins: tuple[str, ...] = ()
    discord_guilds: tuple[int, ...] = ()
    ops_slack_channel: str | None = None
    """`[ops] slack_channel`: where a source's drift and recovery are told (README, "Sources that say
    when they change"); `ops_discord_channel` likewise on Discord."""
    ops_discord_channel: str | None = None
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS
    """LEADERWATCH_MAX_SUBSCRIPTIONS: how many rules one channel may follow (one poll queues at most an
    alert per rule and board for it)."""
    delivery: Mapping[str, float] = field(default_factory=lambda: dict(DELIVERY_DEFAULTS))
    """`[delivery]`: the pace of alert delivery (`DELIVERY_DEFAULTS` names each key)."""
    alerts_per_poll: int = DEFAULT_ALERTS_PER_POLL
    """LEADERWATCH_ALERTS_PER_POLL: alerts one channel gets from one poll at most; the rest are folded
    into one message that says how many more, on which boards (`Alerter(alert_cap=...)`)."""

    @property
    def has_chat(self) -> bool:
        """True when a Slack or Discord token is configured."""
        return bool(self.slack_bot_token or self.slack_oauth or self.discord_token)

    @property
    def slack_oauth(self) -> bool:
        """True for a public multi-workspace Slack app (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set)."""
        return bool(self.slack_client_id and self.slack_client_secret)


def _parse_interval(value: Any, where: str) -> int:
    """Seconds between polls: a TOML number of seconds (3600) or a duration ("90s", "15m", "1.5h", "2w")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number of seconds or a duration, {GRAMMAR}; got {value!r}")
    if isinstance(value, str):
        try:
            seconds = int(parse_duration(value).total_seconds())
        except DurationError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    elif not math.isfinite(value):  # TOML nan, inf
        raise ConfigError(f"{where}: expected a number of seconds or a duration, {GRAMMAR}; got {value!r}")
    else:
        seconds = int(value)
    if seconds < 60:
        raise ConfigError(f"{where}: {seconds}s is too often to poll a public site; use at least 60s")
    return seconds


def _ops_channels(table: Any) -> tuple[str | None, str | None]:
    """`[ops] slack_channel = "C0123ABCDEF"` and `discord_channel = "123456789012345678"` (either or both)."""
    if not isinstance(table, dict):
        raise ConfigError('config [ops]: expected a table with slack_channel = "C0123ABCDEF" and/or '
                          'discord_channel = "123456789012345678"')
    unknown = set(table) - {"slack_channel", "discord_channel"}
    if unknown:
        raise ConfigError(f"config [ops]: unknown key {sorted(unknown)[0]!r}; allowed: slack_channel, "
                          "discord_channel")
    slack = table.get("slack_channel")
    if slack is not None and (not isinstance(slack, str) or not slack.strip() or " " in slack.strip()):
        raise ConfigError(f"config [ops] slack_channel: expected a Slack channel id such as \"C0123ABCDEF\" "
                          f"(channel details > About, at the bottom), got {slack!r}")
    discord = table.get("discord_channel")
    if type(discord) is int:  # a TOML number is fine too
        discord = str(discord)
    if discord is not None and (not isinstance(discord, str) or not discord.strip().isdigit()):
        raise ConfigError(f"config [ops] discord_channel: expected a Discord channel id (digits; Developer "
                          f"Mode on, right-click the channel > Copy Channel ID), got {discord!r}")
    return (slack.strip() if slack else None), (discord.strip() if discord else None)


def _delivery(table: Any) -> dict[str, float]:
    """`[delivery]` over `DELIVERY_DEFAULTS`: positive numbers, `slots` a whole one."""
    if not isinstance(table, dict):
        raise ConfigError("config [delivery]: expected a table, e.g. slots = 8 and "
                          "discord_requests_per_second = 50")
    unknown = set(table) - set(DELIVERY_DEFAULTS)
    if unknown:
        raise ConfigError(f"config [delivery]: unknown key {sorted(unknown)[0]!r}; allowed: "
                          f"{', '.join(DELIVERY_DEFAULTS)}")
    values = dict(DELIVERY_DEFAULTS)
    for key, value in table.items():
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or value < 0 or (value == 0 and key != "channel_interval")
                or (key == "slots" and (not isinstance(value, int) or not 1 <= value <= 256))):
            expected = ("a whole number from 1 to 256" if key == "slots" else "a number of seconds, 0 or "
                        "more" if key == "channel_interval" else "a positive number")
            raise ConfigError(f"config [delivery] {key}: expected {expected}, got {value!r} (default "
                              f"{DELIVERY_DEFAULTS[key]:g})")
        values[key] = float(value)
    return values


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"LEADERWATCH_CONFIG: {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib decodes before parsing and lets this through
        raise ConfigError(f"LEADERWATCH_CONFIG: {path} is not UTF-8 text (byte {exc.start}); save it "
                          f"as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"LEADERWATCH_CONFIG: cannot read {path}: {exc.strerror}") from None


MAKE_A_SECRET_KEY = ('python -c "from cryptography.fernet import Fernet; '
                     'print(Fernet.generate_key().decode())"')


def _check_slack_oauth(env: Callable[[str], str | None], http_port: int | None) -> None:
    """A public multi-workspace app (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) has all it needs, and is
    not mixed with the single-workspace SLACK_BOT_TOKEN (Bolt would ignore the token)."""
    client_id, client_secret = env("SLACK_CLIENT_ID"), env("SLACK_CLIENT_SECRET")
    if not client_id and not client_secret:
        return
    if not client_id or not client_secret:
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        raise ConfigError(f"{missing}: required with the other of SLACK_CLIENT_ID / SLACK_CLIENT_SECRET for "
                          f"OAuth installs ({HOW_TO_GET[missing]}); or unset both for one workspace with "
                          f"SLACK_BOT_TOKEN")
    if env("SLACK_BOT_TOKEN"):
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_CLIENT_ID / SLACK_CLIENT_SECRET: choose one. Unset "
                          "SLACK_BOT_TOKEN for a public app each workspace installs at /slack/install, or "
                          "unset the two OAuth variables for one workspace")
    if not env("SLACK_SIGNING_SECRET"):
        raise ConfigError(f"SLACK_SIGNING_SECRET: required for OAuth installs "
                          f"({HOW_TO_GET['SLACK_SIGNING_SECRET']})")
    if http_port is None:
        raise ConfigError("LEADERWATCH_HTTP_PORT: required for OAuth installs (installers are sent to "
                          "/slack/install and back to /slack/oauth_redirect on that port)")
    if not env("LEADERWATCH_SECRET_KEY"):
        raise ConfigError(f"LEADERWATCH_SECRET_KEY: required for OAuth installs: it encrypts each "
                          f"workspace's bot token in the database. Make one with: "
                          f"{MAKE_A_SECRET_KEY} and keep it safe (without it every workspace must install "
                          f"the app again)")


def _discord_mode(env: Callable[[str], str | None], setting: Callable[[str, str], Any],
                  http_port: int | None) -> str:
    """LEADERWATCH_DISCORD_MODE (`http` by default when DISCORD_PUBLIC_KEY is set, else `gateway`), checked:
    `http` needs the public key (64 hex digits), DISCORD_TOKEN (alerts, registering the command), a port."""
    key = env("DISCORD_PUBLIC_KEY")
    mode = str(setting("LEADERWATCH_DISCORD_MODE", "discord_mode") or ("http" if key else "gateway")).lower()
    if mode not in ("gateway", "http"):
        raise ConfigError(f"LEADERWATCH_DISCORD_MODE: expected `gateway` or `http`, got {mode!r}")
    if key and not re.fullmatch(r"[0-9a-fA-F]{64}", key):
        raise ConfigError(f"DISCORD_PUBLIC_KEY: expected 64 hex digits ({HOW_TO_GET['DISCORD_PUBLIC_KEY']})")
    app_id = env("DISCORD_APPLICATION_ID")
    if app_id and not app_id.isdigit():
        raise ConfigError("DISCORD_APPLICATION_ID: expected digits (Developer Portal > your application > "
                          "General Information > Application ID)")
    if mode == "http":
        if not key:
            raise ConfigError(f"DISCORD_PUBLIC_KEY: required when LEADERWATCH_DISCORD_MODE=http "
                              f"({HOW_TO_GET['DISCORD_PUBLIC_KEY']})")
        if not env("DISCORD_TOKEN"):
            raise ConfigError(f"DISCORD_TOKEN: required when LEADERWATCH_DISCORD_MODE=http, to send alerts "
                              f"and register /leaderwatch ({HOW_TO_GET['DISCORD_TOKEN']})")
        if http_port is None:
            raise ConfigError("LEADERWATCH_HTTP_PORT: required when LEADERWATCH_DISCORD_MODE=http (Discord "
                              "posts to https://HOST/discord/interactions, served on that port)")
    return mode


def load_settings(environ: Mapping[str, str], known_sources: frozenset[str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Build Settings from the environment and the config file it names; ConfigError on bad input.

    Environment variables win over the file. `known_sources` lets `[sources.NAME]` be checked.
    """
    def env(name: str) -> str | None:
        value = environ.get(name)
        return value.strip() if value and value.strip() else None

    base = cwd or Path.cwd()
    config_path = env("LEADERWATCH_CONFIG")
    config: dict[str, Any] = {}
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"LEADERWATCH_CONFIG: {config_path} does not exist; unset it or create the "
                              f"file (see leaderwatch.example.toml)")
        config = _read_config(path)
    elif (base / DEFAULT_CONFIG).is_file():
        config_path = str(base / DEFAULT_CONFIG)
        config = _read_config(base / DEFAULT_CONFIG)

    def setting(env_name: str, key: str) -> Any:
        value = env(env_name)
        return value if value is not None else config.get(key)

    port_raw = setting("LEADERWATCH_HTTP_PORT", "http_port")
    http_port: int | None = None
    if port_raw is not None:
        try:
            if isinstance(port_raw, bool | float):  # TOML `true` or 80.5 would pass int() as 1 or 80
                raise TypeError(port_raw)
            http_port = int(port_raw)
        except (TypeError, ValueError):
            raise ConfigError(f"LEADERWATCH_HTTP_PORT: expected a port number, got {port_raw!r}") from None
        if not 0 <= http_port <= 65535:
            raise ConfigError(f"LEADERWATCH_HTTP_PORT: {http_port} is not a port (0-65535)")

    # A public app (OAuth) takes Slack's requests over HTTP; one workspace connects out (Socket Mode).
    default_mode = "http" if env("SLACK_CLIENT_ID") and env("SLACK_CLIENT_SECRET") else "socket"
    slack_mode = str(setting("LEADERWATCH_SLACK_MODE", "slack_mode") or default_mode).lower()
    if slack_mode not in ("socket", "http"):
        raise ConfigError(f"LEADERWATCH_SLACK_MODE: expected `socket` or `http`, got {slack_mode!r}")
    if slack_mode == "socket" and default_mode == "http":
        raise ConfigError("LEADERWATCH_SLACK_MODE=socket with SLACK_CLIENT_ID / SLACK_CLIENT_SECRET: a "
                          "public app takes Slack's requests over HTTP (its installs come back to "
                          "/slack/oauth_redirect, and any replica can answer); set "
                          "LEADERWATCH_SLACK_MODE=http, or unset it")

    discord_mode = _discord_mode(env, setting, http_port)

    log_level = str(setting("LEADERWATCH_LOG_LEVEL", "log_level") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LEADERWATCH_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    log_format = str(setting("LEADERWATCH_LOG_FORMAT", "log_format") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"LEADERWATCH_LOG_FORMAT: expected `text` or `json`, got {log_format!r}")

    stale_raw = setting("LEADERWATCH_STALE_AFTER", "stale_after")
    stale_after = DEFAULT_STALE_AFTER
    if stale_raw is not None:
        try:
            if isinstance(stale_raw, bool):
                raise TypeError(stale_raw)
            stale_after = float(stale_raw)
        except (TypeError, ValueError):
            stale_after = float("nan")
        if not 1 <= stale_after <= 1000:  # also refuses nan
            raise ConfigError(f"LEADERWATCH_STALE_AFTER: expected a number of poll intervals from 1 to 1000, "
                              f"e.g. 3, got {stale_raw!r}")

    timeout_raw = setting("LEADERWATCH_DB_TIMEOUT", "db_timeout")
    db_timeout = 10.0
    if timeout_raw is not None:
        try:
            if isinstance(timeout_raw, bool):
                raise TypeError(timeout_raw)
            db_timeout = float(timeout_raw)
        except (TypeError, ValueError):
            db_timeout = float("nan")
        if not 0 <= db_timeout <= 3600:  # also refuses nan
            raise ConfigError(f"LEADERWATCH_DB_TIMEOUT: expected seconds from 0 to 3600 a write waits for "
                              f"another program's lock on the database, e.g. 10, got {timeout_raw!r}")

    cap_raw = setting("LEADERWATCH_MAX_SUBSCRIPTIONS", "max_subscriptions")
    max_subscriptions = DEFAULT_MAX_SUBSCRIPTIONS
    if cap_raw is not None:
        try:
            if isinstance(cap_raw, bool | float):
                raise TypeError(cap_raw)
            max_subscriptions = int(cap_raw)
        except (TypeError, ValueError):
            max_subscriptions = 0
        if not 1 <= max_subscriptions <= 100_000:
            raise ConfigError(f"LEADERWATCH_MAX_SUBSCRIPTIONS: expected a whole number of rules one channel "
                              f"may follow, from 1 to 100000 (default {DEFAULT_MAX_SUBSCRIPTIONS}), "
                              f"got {cap_raw!r}")

    per_poll_raw = setting("LEADERWATCH_ALERTS_PER_POLL", "alerts_per_poll")
    alerts_per_poll = DEFAULT_ALERTS_PER_POLL
    if per_poll_raw is not None:
        try:
            if isinstance(per_poll_raw, bool | float):
                raise TypeError(per_poll_raw)
            alerts_per_poll = int(per_poll_raw)
        except (TypeError, ValueError):
            alerts_per_poll = 0
        if not 1 <= alerts_per_poll <= 10_000:
            raise ConfigError(f"LEADERWATCH_ALERTS_PER_POLL: expected a whole number of alerts one channel "
                              f"gets from one poll at most, from 1 to 10000 (default "
                              f"{DEFAULT_ALERTS_PER_POLL}), got {per_poll_raw!r}")

    retention_raw = setting("LEADERWATCH_RETENTION_DAYS", "retention_days")
    retention_days: int | None = None
    if retention_raw is not None:
        try:
            retention_days = int(retention_raw) if not isinstance(retention_raw, bool) else 0
        except (TypeError, ValueError):
            retention_days = 0
        if retention_days < 1:
            raise ConfigError(f"LEADERWATCH_RETENTION_DAYS: expected a whole number of days (at least 1), "
                              f"got {retention_raw!r}")
    retention_period = str(setting("LEADERWATCH_RETENTION_PERIOD", "retention_period") or "day").lower()
    if retention_period not in ("day", "week"):
        raise ConfigError(f"LEADERWATCH_RETENTION_PERIOD: expected `day` or `week`, got {retention_period!r}")

    sources: dict[str, SourceSettings] = {}
    raw_sources = config.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise ConfigError("config [sources]: expected a table of [sources.NAME] sections")
    for name, table in raw_sources.items():
        where = f"config [sources.{name}]"
        if known_sources is not None and name not in known_sources:
            raise ConfigError(f"{where}: unknown source; known sources: {', '.join(sorted(known_sources))}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table with `enabled`, `interval` and `url`")
        unknown = set(table) - {"enabled", "interval", "url"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: enabled, interval, url")
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where} enabled: expected true or false, got {enabled!r}")
        interval = table.get("interval")
        url = table.get("url")
        if url is not None:
            problem = url_problem(url)
            if problem:
                raise ConfigError(f"{where} url: {problem}")
            url = url.strip()
        sources[name] = SourceSettings(
            enabled, _parse_interval(interval, f"{where} interval") if interval is not None else None, url)

    aliases = config.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise ConfigError('config [aliases]: expected `"other name" = "model name"` lines')
    groups = config.get("groups", {})
    if not isinstance(groups, dict) or not all(isinstance(v, dict) for v in groups.values()):
        raise ConfigError("config [groups]: expected [groups.NAME] tables with countries, organizations "
                          "or licence")

    raw_suites = config.get("suites", {})
    if not isinstance(raw_suites, dict):
        raise ConfigError('config [suites]: expected [suites.NAME] tables, each with '
                          'boards = ["pattern", ...]')
    tables: dict[str, list[str]] = {}
    for name, table in raw_suites.items():
        boards = table.get("boards") if isinstance(table, dict) else None
        if (not isinstance(table, dict) or set(table) != {"boards"} or not isinstance(boards, list)
                or not all(isinstance(b, str) for b in boards)):
            raise ConfigError(f'config [suites.{name}]: expected boards = ["lmarena/*", "aider/polyglot", '
                              '...] and nothing else')
        tables[name] = boards
    try:
        suites = make_suites(tables)
    except SuiteError as exc:
        raise ConfigError(f"config [suites]: {exc}") from None

    rules = config.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError('config [[rules]]: expected [[rules]] tables, each with kind = "..." and its '
                          "parameters")

    slack_table = config.get("slack", {})
    discord_table = config.get("discord", {})
    if not isinstance(slack_table, dict) or not isinstance(discord_table, dict):
        raise ConfigError("config [slack] / [discord]: expected tables")
    slack_admins = slack_table.get("admins", [])
    if not isinstance(slack_admins, list) or not all(isinstance(u, str) and u for u in slack_admins):
        raise ConfigError('config [slack] admins: expected a list of Slack user ids, e.g. ["U012ABCDEF"]')
    guilds = discord_table.get("guilds", [])
    if not isinstance(guilds, list) or not all(type(g) is int for g in guilds):
        raise ConfigError("config [discord] guilds: expected a list of guild ids (numbers), e.g. [123456789]")

    ops_slack, ops_discord = _ops_channels(config.get("ops", {}))
    delivery = _delivery(config.get("delivery", {}))

    _check_slack_oauth(env, http_port)

    slack_bot_token = env("SLACK_BOT_TOKEN")
    if slack_bot_token and not str(slack_bot_token).startswith("xoxb-"):
        raise ConfigError(f"SLACK_BOT_TOKEN: expected a bot token starting with xoxb- "
                          f"({HOW_TO_GET['SLACK_BOT_TOKEN']})")

    db_path = str(setting("LEADERWATCH_DB", "db") or DEFAULT_DB)
    if is_postgres_conninfo(db_path):
        raise ConfigError(f"LEADERWATCH_DB (or --db, or `db` in the file) {NOT_A_URL}")

    return Settings(
        db_path=db_path,
        db_timeout=db_timeout,
        max_subscriptions=max_subscriptions,
        alerts_per_poll=alerts_per_poll,
        config_path=config_path,
        recordings=setting("LEADERWATCH_RECORDINGS", "recordings"),
        http_port=http_port,
        retention_days=retention_days,
        retention_period=retention_period,
        slack_mode=slack_mode,
        log_level=log_level,
        log_format=log_format,
        stale_after=stale_after,
        slack_bot_token=slack_bot_token,
        slack_app_token=env("SLACK_APP_TOKEN"),
        slack_signing_secret=env("SLACK_SIGNING_SECRET"),
        slack_client_id=env("SLACK_CLIENT_ID"),
        slack_client_secret=env("SLACK_CLIENT_SECRET"),
        slack_redirect_uri=env("SLACK_REDIRECT_URI"),
        secret_key=env("LEADERWATCH_SECRET_KEY"),
        discord_token=env("DISCORD_TOKEN"),
        discord_mode=discord_mode,
        discord_public_key=env("DISCORD_PUBLIC_KEY"),
        discord_application_id=env("DISCORD_APPLICATION_ID"),
        github_token=env("GITHUB_TOKEN"),
        slack_api_url=env("LEADERWATCH_SLACK_API_URL"),
        discord_api_url=env("LEADERWATCH_DISCORD_API_URL"),
        discord_gateway_url=env("LEADERWATCH_DISCORD_GATEWAY_URL"),
        sources=sources,
        aliases=dict(aliases),
        groups=groups,
        suites=suites,
        rules=tuple(rules),
        slack_admins=tuple(slack_admins),
        discord_guilds=tuple(guilds),
        ops_slack_channel=ops_slack,
        ops_discord_channel=ops_discord,
        delivery=delivery,
    )
