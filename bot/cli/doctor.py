"""`leaderwatch doctor`: check the settings, the database, each source and each chat token.

One line per check, `ok`, `FAIL` or `skip`, saying what is wrong and how to fix it (naming the
setting); the exit status is 1 when a check fails. Nothing here changes the service's state: the
sources get one request each (a GET whose body is not read), Slack `auth.test` (and
`apps.connections.open` in Socket Mode, which only issues a connection URL), Discord `/users/@me`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from leaderwatch.bot.app import App
from leaderwatch.bot.runtime.logs import Redactor, secrets_of
from leaderwatch.bot.settings import HOW_TO_GET, ConfigError, Settings, load_settings
from leaderwatch.sources import lmarena
from leaderwatch.sources.base import Source
from leaderwatch.sources.http import new_client
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources, is_enabled_by_default, source_names
from leaderwatch.storage.db import Database, StorageError, db_file, open_db, schema_state
from leaderwatch.storage.db import is_writable as database_writable
from leaderwatch.storage.engine import is_postgres_url

OK, FAIL, SKIP = "ok", "FAIL", "skip"
SLACK_API = "https://slack.com/api/"
DISCORD_API = "https://discord.com/api/v10"
TIMEOUT = 10.0
"""Seconds each network check may take."""

SLACK_BOT_TOKEN_HELP, SLACK_APP_TOKEN_HELP, DISCORD_TOKEN_HELP = (
    HOW_TO_GET["SLACK_BOT_TOKEN"], HOW_TO_GET["SLACK_APP_TOKEN"], HOW_TO_GET["DISCORD_TOKEN"])


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: `ok`, `FAIL` or `skip`, what was checked, and what to do."""

    status: str
    name: str
    detail: str

    @property
    def line(self) -> str:
        """The check as printed: `FAIL  slack bot token: ...`."""
        return f"{self.status:<4}  {self.name}: {self.detail}"


def exit_status(checks: Sequence[Check]) -> int:
    """1 when a check failed, else 0."""
    return 1 if any(c.status == FAIL for c in checks) else 0


# -- settings and database -----------------------------------------------------------------------------

def check_settings(environ: Mapping[str, str]) -> tuple[Settings | None, Check]:
    """Load the settings as `leaderwatch run` would; a ConfigError names the setting."""
    try:
        settings = load_settings(environ, known_sources=source_names())
    except ConfigError as exc:
        return None, Check(FAIL, "settings", str(exc))
    return settings, settings_ok(settings)


def settings_ok(settings: Settings) -> Check:
    """The line for settings that loaded."""
    where = f"config file {settings.config_path}" if settings.config_path else "no config file"
    return Check(OK, "settings", f"valid ({where}; environment variables win over it)")


def check_database(settings: Settings, db: Database | None = None) -> Check:
    """The database opens (migrations applied), takes writes, and passes SQLite's quick_check; on
    PostgreSQL: the server answers, its version, and the schema's version instead of quick_check."""
    path = settings.db_path
    if is_postgres_url(path):
        return check_postgres(path, db)
    fix = "set LEADERWATCH_DB to a writable path (or --db PATH)"
    existed = path == ":memory:" or Path(path).exists()
    opened = db is None
    if db is None:
        try:
            db = open_db(path)
        except StorageError as exc:
            return Check(FAIL, "database", f"{exc}; {fix}")
    try:
        if not database_writable(db):
            return Check(FAIL, "database", f"{path} does not take writes (read-only file or folder, disk "
                                           f"full, or locked by another program); {fix}")
        try:
            problems = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
        except Exception as exc:  # noqa: BLE001 - a damaged file can fail the check itself
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems != ["ok"]:
            return Check(FAIL, "database", f"{path} failed SQLite's quick_check ({'; '.join(problems[:3])}); "
                                           "restore it from a backup, or move it away and run `leaderwatch "
                                           "import` to rebuild the history")
        snapshots = db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    finally:
        if opened:
            db.close()
    made = "" if existed else ", created now"
    return Check(OK, "database",
                 f"{path} opens, takes writes, passes quick_check; {snapshots} snapshot(s){made}")


def check_postgres(url: str, db: Database | None = None) -> Check:
    """PostgreSQL: connects (migrations applied), takes writes, its server version and schema version."""
    fix = "check that the server runs and LEADERWATCH_DB names it (postgresql://USER:PASSWORD@HOST:PORT/DB)"
    opened = db is None
    if db is None:
        try:
            db = open_db(url)
        except StorageError as exc:
            return Check(FAIL, "database", f"{exc}; {fix}")
    where = db_file(db)
    try:
        if not database_writable(db):
            return Check(FAIL, "database", f"{where} does not take writes (a read-only server or user, a "
                                           f"full disk, or a lock held); {fix}")
        version = str(db.execute("SHOW server_version").fetchone()[0]).split(" ")[0]
        schema = schema_state(db)
        snapshots = db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    finally:
        if opened:
            db.close()
    if schema.pending:
        return Check(FAIL, "database", f"{where}: migrations not applied: {', '.join(schema.pending)}; "
                                       "run `leaderwatch run` once (it applies them) and check its log")
    newer = f"; applied by a newer leaderwatch: {', '.join(schema.unknown)}" if schema.unknown else ""
    return Check(OK, "database", f"{where} (PostgreSQL {version}) connects, takes writes; schema at "
                                 f"{schema.latest}{newer}; {snapshots} snapshot(s)")


# -- sources -------------------------------------------------------------------------------------------

def probe_url(source: Source) -> str | None:
    """One URL that tells whether a source's live data can be fetched: the one it polls first (each
    source names it, `probe_url`, from its own or the configured `url`)."""
    given = getattr(source, "probe_url", None)
    if isinstance(given, str) and given:
        return given
    if source.name == lmarena.NAME:
        return lmarena.dataset_url("text", 0)
    boards = source.boards()
    return boards[0].url if boards and boards[0].url else None


async def check_source(client: httpx.AsyncClient, source: Source, enabled: bool,
                       timeout: float = TIMEOUT, configured_url: str | None = None) -> Check:
    """One GET of the source's live URL (headers only): reachable and not an error status.

    With `configured_url` (`[sources.NAME] url`), that URL is the one checked, and a failure says to
    fix or remove the setting.
    """
    name = f"source {source.name}"
    if not enabled:
        if not is_enabled_by_default(source):
            return Check(SKIP, name, f"not polled: retired upstream, its history stays readable "
                                     f"([sources.{source.name}] enabled = true polls it anyway)")
        return Check(SKIP, name, f"disabled in the config ([sources.{source.name}] enabled = false)")
    url = configured_url or probe_url(source)
    if url is None:
        return Check(SKIP, name, "no live URL to check")
    if configured_url:
        fix = (f"check [sources.{source.name}] url = \"{configured_url}\" in the config file (a mirror "
               "must serve the same files), or remove it to use the source's own address")
    else:
        fix = (f"check this machine's network, DNS and proxy (HTTPS_PROXY) settings, or disable the source "
               f"with [sources.{source.name}] enabled = false")
    started = time.perf_counter()
    try:
        async with client.stream("GET", url, timeout=timeout) as response:
            code = response.status_code
    except httpx.TimeoutException:
        return Check(FAIL, name, f"no answer from {url} within {timeout:g}s; {fix}")
    except httpx.HTTPError as exc:
        return Check(FAIL, name, f"cannot reach {url}: {type(exc).__name__}: {exc}; {fix}")
    if code >= 400:
        hint = (" (rate limited: wait and run doctor again)" if code == 429 else
                " (the site is having trouble; polls back off and retry)" if code >= 500 else
                " (the address moved: leaderwatch may need an update)")
        return Check(FAIL, name, f"{url} answered HTTP {code}{hint}" + (f"; {fix}" if configured_url else ""))
    what = "configured url " if configured_url else ""
    return Check(OK, name, f"{what}{url} answered HTTP {code} in {time.perf_counter() - started:.1f}s")


# -- chat tokens ---------------------------------------------------------------------------------------

async def _slack_call(client: httpx.AsyncClient, base: str, method: str, token: str,
                      timeout: float) -> tuple[dict[str, Any] | None, str]:
    """POST a Slack Web API method; (its JSON, "") or (None, why it could not be called)."""
    url = (base if base.endswith("/") else base + "/") + method
    try:
        response = await client.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.TimeoutException:
        return None, f"no answer from {url} within {timeout:g}s"
    except httpx.HTTPError as exc:
        return None, f"cannot reach {url}: {type(exc).__name__}: {exc}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, f"{url} answered HTTP {response.status_code} without Slack's JSON"
    return body, ""


def check_slack_oauth(settings: Settings) -> Check:
    """A public app (OAuth): each workspace's token comes from its install, so what can be checked here is
    the settings the flow needs and that LEADERWATCH_SECRET_KEY makes a key."""
    missing = [name for name, value in (("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
                                        ("LEADERWATCH_HTTP_PORT", settings.http_port),
                                        ("LEADERWATCH_SECRET_KEY", settings.secret_key)) if value is None]
    if missing:
        names, one = " and ".join(missing), len(missing) == 1
        return Check(FAIL, "slack oauth",
                     f"SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set (a public app) but {names} "
                     f"{'is' if one else 'are'} not: set {'it' if one else 'them'} (README \"A public app "
                     "for many workspaces\")")
    from leaderwatch.storage.installations import InstallationError, TokenCipher  # cryptography: OAuth only

    try:
        TokenCipher(str(settings.secret_key))
    except InstallationError as exc:
        return Check(FAIL, "slack oauth", str(exc))
    return Check(OK, "slack oauth", f"public app {settings.slack_client_id}: workspaces install at "
                                    "https://YOUR-HOST/slack/install; their tokens are checked as they are "
                                    "used")


async def check_slack(client: httpx.AsyncClient, settings: Settings, timeout: float = TIMEOUT) -> list[Check]:
    """SLACK_BOT_TOKEN by `auth.test`; SLACK_APP_TOKEN (Socket Mode) by `apps.connections.open`;
    in HTTP mode, that SLACK_SIGNING_SECRET and LEADERWATCH_HTTP_PORT are set."""
    base = settings.slack_api_url or SLACK_API
    net_fix = ("check this machine's network and proxy" +
               (", and LEADERWATCH_SLACK_API_URL" if settings.slack_api_url else ""))
    if settings.slack_oauth and not settings.slack_bot_token:
        return [check_slack_oauth(settings)]
    if not settings.slack_bot_token:
        if settings.slack_app_token or settings.slack_signing_secret:
            return [Check(FAIL, "slack bot token",
                          f"SLACK_BOT_TOKEN is not set, but other Slack settings are: set it "
                          f"({SLACK_BOT_TOKEN_HELP}) or unset SLACK_APP_TOKEN and SLACK_SIGNING_SECRET")]
        return [Check(SKIP, "slack", "SLACK_BOT_TOKEN is not set: Slack is off")]
    checks: list[Check] = []
    body, problem = await _slack_call(client, base, "auth.test", settings.slack_bot_token, timeout)
    if body is None:
        checks.append(Check(FAIL, "slack bot token", f"cannot check SLACK_BOT_TOKEN: {problem}; {net_fix}"))
    elif not body.get("ok"):
        code = body.get("error", "no error code")
        checks.append(Check(FAIL, "slack bot token",
                            f"SLACK_BOT_TOKEN was rejected by auth.test ({code}); set it to the token at "
                            f"{SLACK_BOT_TOKEN_HELP} and reinstall the app to the "
                            "workspace if it was revoked"))
    else:
        who = f"{body.get('user', '?')} ({body.get('user_id', '?')}) in {body.get('team', '?')}"
        checks.append(Check(OK, "slack bot token", f"auth.test: signed in as {who}"))
    if settings.slack_mode == "socket":
        if not settings.slack_app_token:
            checks.append(Check(FAIL, "slack app token", f"SLACK_APP_TOKEN: required in Socket Mode ("
                                                         f"{SLACK_APP_TOKEN_HELP}), or set "
                                                         "LEADERWATCH_SLACK_MODE=http"))
        else:
            body, problem = await _slack_call(client, base, "apps.connections.open", settings.slack_app_token,
                                              timeout)
            if body is None:
                checks.append(Check(FAIL, "slack app token", f"cannot check SLACK_APP_TOKEN: {problem}; "
                                                             f"{net_fix}"))
            elif not body.get("ok"):
                checks.append(Check(FAIL, "slack app token",
                                    f"SLACK_APP_TOKEN was rejected by apps.connections.open "
                                    f"({body.get('error', 'no error code')}); set it to an app-level token "
                                    f"({SLACK_APP_TOKEN_HELP}) and turn Socket Mode on in the app"))
            else:
                checks.append(Check(OK, "slack app token", "apps.connections.open: Socket Mode can connect"))
    else:
        if not settings.slack_signing_secret:
            checks.append(Check(FAIL, "slack signing secret",
                                f"SLACK_SIGNING_SECRET: required in HTTP mode "
                                f"({HOW_TO_GET['SLACK_SIGNING_SECRET']})"))
        else:
            checks.append(Check(OK, "slack signing secret", "set (Slack's signed requests will prove it)"))
        if settings.http_port is None:
            checks.append(Check(FAIL, "slack http port", "LEADERWATCH_HTTP_PORT: required when "
                                                         "LEADERWATCH_SLACK_MODE=http (Slack posts to "
                                                         "/slack/events on that port)"))
    return checks


async def check_discord(client: httpx.AsyncClient, settings: Settings, timeout: float = TIMEOUT) -> Check:
    """DISCORD_TOKEN by `GET /users/@me` (what discord.py's login does first)."""
    if not settings.discord_token:
        return Check(SKIP, "discord", "DISCORD_TOKEN is not set: Discord is off")
    url = (settings.discord_api_url or DISCORD_API).rstrip("/") + "/users/@me"
    net_fix = ("check this machine's network and proxy" +
               (", and LEADERWATCH_DISCORD_API_URL" if settings.discord_api_url else ""))
    try:
        response = await client.get(url, headers={"Authorization": f"Bot {settings.discord_token}"},
                                    timeout=timeout)
    except httpx.TimeoutException:
        return Check(FAIL, "discord token", f"cannot check DISCORD_TOKEN: no answer from {url} within "
                                            f"{timeout:g}s; {net_fix}")
    except httpx.HTTPError as exc:
        return Check(FAIL, "discord token", f"cannot check DISCORD_TOKEN: cannot reach {url}: "
                                            f"{type(exc).__name__}: {exc}; {net_fix}")
    if response.status_code == 401:
        return Check(FAIL, "discord token", f"DISCORD_TOKEN was rejected (401 Unauthorized); set it to the "
                                            f"bot token ({DISCORD_TOKEN_HELP})")
    if response.status_code != 200:
        return Check(FAIL, "discord token", f"cannot check DISCORD_TOKEN: {url} answered HTTP "
                                            f"{response.status_code}; try again later")
    try:
        user = response.json()
    except ValueError:
        user = {}
    if not isinstance(user, dict):
        user = {}
    if not user.get("bot", True):
        return Check(FAIL, "discord token", "DISCORD_TOKEN belongs to a user account, not a bot; use the bot "
                                            f"token ({DISCORD_TOKEN_HELP})")
    return Check(OK, "discord token", f"/users/@me: signed in as {user.get('username', '?')} "
                                      f"({user.get('id', '?')})")


# -- all together --------------------------------------------------------------------------------------

async def diagnose(target: App | Settings | Mapping[str, str], *, client: httpx.AsyncClient | None = None,
                   sources: Sequence[Source] | None = None, skip_sources: bool = False,
                   timeout: float = TIMEOUT) -> list[Check]:
    """Every check, in order: settings, database, sources, Slack, Discord.

    `target` is the running app (settings loaded, database open), the settings, or the environment
    (the settings are loaded here, so their errors become a FAIL line instead of stopping everything).
    """
    db = None
    enabled: set[str] | None = None
    if isinstance(target, App):
        settings: Settings | None = target.settings
        checks = [settings_ok(target.settings)]
        client = client or target.client
        sources = sources if sources is not None else target.sources
        enabled = {s.name for s in target.enabled_sources()}
        db = target.db
    elif isinstance(target, Settings):
        settings = target
        checks = [settings_ok(target)]
    else:
        settings, check = check_settings(target)
        checks = [check]
    if settings is None:
        return [*checks, Check(SKIP, "database, sources, chat tokens", "need valid settings first")]
    checks.append(check_database(settings, db))
    redact = Redactor(secrets_of(settings))
    own_client = client is None
    http = client or new_client(timeout)
    try:
        urls = {n: s.url for n, s in settings.sources.items() if s.url}
        if sources is None:
            sources = all_sources(Identity.load(settings.aliases), urls={n: u for n, u in urls.items()
                                                                         if n in source_names()})
        if enabled is None:
            enabled = {s.name for s in sources
                       if (settings.sources[s.name].enabled if s.name in settings.sources
                           else is_enabled_by_default(s))}
        if skip_sources:
            checks += [Check(SKIP, f"source {s.name}", "--skip-sources") for s in sources]
            source_checks: list[Check] = []
        else:
            source_checks = list(await asyncio.gather(
                *(check_source(http, s, s.name in enabled, timeout, urls.get(s.name)) for s in sources)))
        slack, discord = await asyncio.gather(check_slack(http, settings, timeout),
                                              check_discord(http, settings, timeout))
    finally:
        if own_client:
            await http.aclose()
    # Error texts from the network libraries could quote a request; no token may reach the terminal.
    return [Check(c.status, c.name, redact(c.detail)) for c in [*checks, *source_checks, *slack, discord]]


def print_checks(checks: Sequence[Check]) -> None:
    """One line per check, then a summary."""
    for check in checks:
        print(check.line)
    failed = sum(c.status == FAIL for c in checks)
    print(f"{failed} check(s) failed" if failed else "all checks passed")


def cmd_doctor(target: App | Settings | Mapping[str, str], args: argparse.Namespace) -> int:
    """Run every check and print one line each; 1 when something fails.

    Best called with the environment (`os.environ` plus `--db`), before the settings are loaded and
    the app is built, so a bad setting or an unopenable database is reported like the rest.
    """
    checks = asyncio.run(diagnose(target, skip_sources=getattr(args, "skip_sources", False),
                                  timeout=getattr(args, "timeout", TIMEOUT)))
    print_checks(checks)
    return exit_status(checks)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `doctor` to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "doctor", help="check the settings, the database, each source and each chat token; exit status 1 "
                       "when something fails")
    p.add_argument("--skip-sources", action="store_true",
                   help="do not contact the leaderboard sites (e.g. on a machine without internet access)")
    p.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
                   help=f"seconds each network check may take (default {TIMEOUT:g})")
    return p
