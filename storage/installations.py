"""Installed chat workspaces (a public Slack app): bot tokens encrypted at rest, OAuth states, and which
workspace each channel belongs to.

One row per workspace in `installations` (the bot token only as Fernet ciphertext, keyed from
`LEADERWATCH_SECRET_KEY`), `oauth_states` for the install flow (each consumed once), and
`channel_workspaces` so an alert to a channel goes with the token of that channel's workspace.
Removing a workspace (uninstalled, token revoked) removes its channels' subscriptions and settings and
keeps the audit trail, every row of it stamped with the workspace.

Portable SQL only (`?` placeholders, `INSERT ... ON CONFLICT DO UPDATE`): the same functions run on
SQLite and PostgreSQL. `cryptography` is imported here and nowhere else in storage.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from leaderwatch.storage.db import Database, from_text, to_text
from leaderwatch.storage.subscriptions import record_audit

logger = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
"""Characters a LEADERWATCH_SECRET_KEY that is not a Fernet key must have at least."""
HKDF_SALT = b"leaderwatch installations v1"
HKDF_INFO = b"bot tokens at rest"
MAKE_A_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
"""The command that prints a new key, for every message that asks for one."""
STATE_SECONDS = 600
"""How long an OAuth state (an install started in a browser) stays valid: Bolt's default, 10 minutes."""
UNINSTALLED = "uninstall"
"""The audit action of a workspace removed (uninstalled or its token revoked)."""
SYSTEM_USER = "leaderwatch"


class InstallationError(Exception):
    """A stored token cannot be read back (the key changed), or the secret key is unusable."""


class TokenCipher:
    """Encrypts bot tokens for storage (Fernet: AES-128-CBC + HMAC-SHA256, with a timestamp).

    The key is `LEADERWATCH_SECRET_KEY`: a Fernet key (`Fernet.generate_key()`, 44 url-safe base64
    characters) is used as it is; any other string of 16 characters or more is stretched into one with
    HKDF-SHA256 (fixed salt and info), so a passphrase from a secret manager works as well.
    """

    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(to_fernet_key(secret))

    def __repr__(self) -> str:
        return "TokenCipher(<secret>)"

    def encrypt(self, token: str) -> str:
        """The token as ciphertext text (different each time: Fernet adds a random IV)."""
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The token back; InstallationError when this key did not encrypt it."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise InstallationError("a stored bot token cannot be decrypted with LEADERWATCH_SECRET_KEY: "
                                    "the key changed since the workspace was installed; restore the old "
                                    "key, or have the workspace install the app again") from exc


def to_fernet_key(secret: str) -> bytes:
    """A Fernet key from LEADERWATCH_SECRET_KEY (see `TokenCipher`); InstallationError when too short."""
    secret = secret.strip()
    try:
        if len(base64.urlsafe_b64decode(secret.encode("ascii"))) == 32 and len(secret) == 44:
            return secret.encode("ascii")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        pass
    if len(secret) < MIN_SECRET_LENGTH:
        raise InstallationError(f"LEADERWATCH_SECRET_KEY: too short ({len(secret)} characters): use a Fernet "
                                f"key, made with {MAKE_A_KEY}, or any secret of at least {MIN_SECRET_LENGTH} "
                                f"characters")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    derived = hkdf.derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


@dataclass(frozen=True, slots=True)
class Installation:
    """One workspace (or Enterprise Grid organization) that installed the app, its bot token decrypted.

    `workspace` is the key every other table uses: the team id, or the enterprise id for an
    organization-wide install.
    """

    platform: str
    workspace: str
    team_id: str | None
    enterprise_id: str | None
    bot_token: str = field(repr=False)
    bot_user_id: str = ""
    bot_id: str = ""
    bot_scopes: tuple[str, ...] = ()
    team_name: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    app_id: str | None = None
    installer_user_id: str | None = None
    installed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Removed:
    """What removing a workspace removed."""

    workspace: str
    installation: bool
    channels: int
    subscriptions: int
    settings: int
    pending: int
    """Undelivered alerts to its channels, skipped (no token can send them any more)."""


def workspace_key(team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool) -> str:
    """The workspace an install or a request belongs to: the organization for an org-wide install."""
    return str((enterprise_id if is_enterprise_install else team_id) or team_id or enterprise_id or "")


_COLUMNS = ("platform", "workspace", "team_id", "team_name", "enterprise_id", "enterprise_name",
            "is_enterprise_install", "app_id", "bot_user_id", "bot_id", "bot_scopes", "bot_token_encrypted",
            "installer_user_id", "installed_at", "updated_at")


def save_installation(db: Database, cipher: TokenCipher, install: Installation, now: datetime) -> None:
    """Store (or replace, on a reinstall) a workspace's installation; the token only encrypted."""
    row = {"platform": install.platform, "workspace": install.workspace, "team_id": install.team_id,
           "team_name": install.team_name, "enterprise_id": install.enterprise_id,
           "enterprise_name": install.enterprise_name,
           "is_enterprise_install": int(install.is_enterprise_install), "app_id": install.app_id,
           "bot_user_id": install.bot_user_id, "bot_id": install.bot_id,
           "bot_scopes": ",".join(install.bot_scopes),
           "bot_token_encrypted": cipher.encrypt(install.bot_token),
           "installer_user_id": install.installer_user_id,
           "installed_at": to_text(install.installed_at or now), "updated_at": to_text(now)}
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("platform", "workspace"))
    db.execute(f"INSERT INTO installations ({', '.join(_COLUMNS)}) VALUES ({_in(_COLUMNS)}) ON CONFLICT "
               f" (platform, workspace) DO UPDATE SET {updates}", [row[c] for c in _COLUMNS])


def _to_installation(row: dict[str, object], cipher: TokenCipher) -> Installation:
    scopes = str(row.get("bot_scopes") or "")
    installed = row.get("installed_at")
    return Installation(
        platform=str(row["platform"]), workspace=str(row["workspace"]),
        team_id=_text(row.get("team_id")), enterprise_id=_text(row.get("enterprise_id")),
        bot_token=cipher.decrypt(str(row["bot_token_encrypted"])),
        bot_user_id=str(row.get("bot_user_id") or ""),
        bot_id=str(row.get("bot_id") or ""), bot_scopes=tuple(s for s in scopes.split(",") if s),
        team_name=_text(row.get("team_name")), enterprise_name=_text(row.get("enterprise_name")),
        is_enterprise_install=bool(row.get("is_enterprise_install")), app_id=_text(row.get("app_id")),
        installer_user_id=_text(row.get("installer_user_id")),
        installed_at=from_text(str(installed)) if installed else None)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def find_installation(db: Database, cipher: TokenCipher, platform: str,
                      workspace: str) -> Installation | None:
    """A workspace's installation, its token decrypted; None when it is not installed."""
    rows = list(db.query("SELECT * FROM installations WHERE platform = ? AND workspace = ?",
                         [platform, workspace]))
    return _to_installation(rows[0], cipher) if rows else None


def installed_workspaces(db: Database, platform: str) -> list[str]:
    """The workspaces that have the app installed, sorted (nothing decrypted)."""
    rows = db.execute("SELECT workspace FROM installations WHERE platform = ? ORDER BY workspace",
                      [platform]).fetchall()
    return [str(r[0]) for r in rows]


def record_channel(db: Database, platform: str, channel_id: str, workspace: str, now: datetime) -> None:
    """Remember which workspace a channel belongs to (seen in a command, a click or an event from it)."""
    db.execute("INSERT INTO channel_workspaces (platform, channel_id, workspace, seen_at) VALUES "
               "(?, ?, ?, ?) ON CONFLICT (platform, channel_id) DO UPDATE SET "
               "workspace = excluded.workspace, seen_at = excluded.seen_at",
               [platform, channel_id, workspace, to_text(now)])


def channel_workspace(db: Database, platform: str, channel_id: str) -> str | None:
    """The workspace a channel was last seen in, or None when it never was."""
    row = db.execute("SELECT workspace FROM channel_workspaces WHERE platform = ? AND channel_id = ?",
                     [platform, channel_id]).fetchone()
    return str(row[0]) if row else None


def all_channel_workspaces(db: Database, platform: str) -> dict[str, str]:
    """Every channel whose workspace was seen, with that workspace (the delivery pace's scopes)."""
    rows = db.execute("SELECT channel_id, workspace FROM channel_workspaces WHERE platform = ?",
                      [platform]).fetchall()
    return {str(channel): str(workspace) for channel, workspace in rows}


def workspace_channels(db: Database, platform: str, workspace: str) -> list[str]:
    """The channels seen in a workspace, sorted."""
    rows = db.execute("SELECT channel_id FROM channel_workspaces WHERE platform = ? AND workspace = ? "
                      "ORDER BY channel_id", [platform, workspace]).fetchall()
    return [str(r[0]) for r in rows]


def channel_token(db: Database, cipher: TokenCipher, platform: str, channel_id: str) -> str | None:
    """The bot token of the workspace a channel belongs to; None when the channel's workspace is unknown
    or no longer installed."""
    row = db.execute("SELECT i.bot_token_encrypted FROM channel_workspaces c JOIN installations i ON "
                     "i.platform = c.platform AND i.workspace = c.workspace WHERE c.platform = ? AND "
                     "c.channel_id = ?", [platform, channel_id]).fetchone()
    return cipher.decrypt(str(row[0])) if row else None


def stamp_audit(db: Database, platform: str, channel_id: str, workspace: str) -> int:
    """Write the workspace on a channel's audit rows that do not carry one yet; how many."""
    cursor = db.execute("UPDATE audit SET workspace = ? WHERE platform = ? AND channel_id = ? AND "
                        "workspace IS NULL", [workspace, platform, channel_id])
    return max(int(cursor.rowcount), 0)


def _in(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


def remove_workspace(db: Database, platform: str, workspace: str, reason: str, now: datetime) -> Removed:
    """Forget a workspace (uninstalled, or its bot token revoked): its installation, and its channels'
    subscriptions, settings and undelivered alerts, in one transaction. The audit trail stays: each of
    its channels gets a row saying why, and all their rows carry the workspace."""
    with db.atomic():
        channels = workspace_channels(db, platform, workspace)
        subscriptions = settings = pending = 0
        if channels:
            where, params = f"platform = ? AND channel_id IN ({_in(channels)})", [platform, *channels]
            subscriptions = int(db.execute(f"DELETE FROM subscriptions WHERE {where}", params).rowcount)
            settings = int(db.execute(f"DELETE FROM channel_settings WHERE {where}", params).rowcount)
            pending = int(db.execute(f"UPDATE outbox SET status = 'skipped', last_error = ? WHERE {where} "
                                     f"AND status = 'pending'", [f"workspace {workspace}: {reason}", *params]
                                     ).rowcount)
            for channel_id in channels:
                record_audit(db, now, platform, channel_id, SYSTEM_USER, SYSTEM_USER, UNINSTALLED,
                             f"workspace {workspace}: {reason}")
                stamp_audit(db, platform, channel_id, workspace)  # the new row too
            db.execute("DELETE FROM channel_workspaces WHERE platform = ? AND workspace = ?",
                       [platform, workspace])
        installed = int(db.execute("DELETE FROM installations WHERE platform = ? AND workspace = ?",
                                   [platform, workspace]).rowcount)
    return Removed(workspace, installed > 0, len(channels), subscriptions, settings, max(pending, 0))


def issue_state(db: Database, now: datetime, seconds: int = STATE_SECONDS) -> str:
    """A new OAuth state (random, unguessable), valid `seconds`; expired ones are dropped meanwhile."""
    state = secrets.token_urlsafe(32)
    db.execute("DELETE FROM oauth_states WHERE expires_at <= ?", [to_text(now)])
    db.execute("INSERT INTO oauth_states (state, created_at, expires_at) VALUES (?, ?, ?)",
               [state, to_text(now), to_text(now + timedelta(seconds=seconds))])
    return state


def consume_state(db: Database, state: str, now: datetime) -> bool:
    """True once for a state this app issued and that has not expired; False for any other."""
    cursor = db.execute("DELETE FROM oauth_states WHERE state = ? AND expires_at > ?", [state, to_text(now)])
    return int(cursor.rowcount) == 1
