"""Organizations and aliases as stored for readers of the database (datasette, sqlite-utils CLI)."""

from __future__ import annotations

from leaderwatch.sources.identity import Identity
from leaderwatch.storage.engine import Database


def _wanted(identity: Identity) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    # Two keys under one display name make one row (the last, as the upsert by name would keep).
    by_name = {identity.org_names.get(k, k): ",".join(v) for k, v in sorted(identity.org_countries.items())}
    orgs = sorted(by_name.items())
    aliases = sorted((a, k, "identity") for a, k in identity.aliases.items())
    return orgs, aliases


def is_identity_synced(db: Database, identity: Identity) -> bool:
    """True when the stored identity tables already say what `identity` says (nothing to write)."""
    orgs, aliases = _wanted(identity)
    stored_orgs = sorted((str(n), str(c)) for n, c in db.execute("SELECT name, countries FROM organizations"))
    stored_aliases = sorted((str(a), str(k), str(o)) for a, k, o in
                            db.execute("SELECT alias, key, origin FROM aliases"))
    return stored_orgs == orgs and stored_aliases == aliases


def sync_identity(db: Database, identity: Identity) -> bool:
    """Write the identity tables in use (organization -> countries, alias -> key) to the database, only
    when they differ from what is stored: a start-up with unchanged tables writes nothing (read-only
    commands then work while another program holds the write lock). True when it wrote."""
    if is_identity_synced(db, identity):
        return False
    orgs, aliases = _wanted(identity)
    with db.atomic():
        db.execute("DELETE FROM organizations")
        db.table("organizations").insert_all(
            [{"name": n, "countries": c} for n, c in orgs], pk="name", replace=True)
        db.execute("DELETE FROM aliases")
        db.table("aliases").insert_all(
            [{"alias": a, "key": k, "origin": o} for a, k, o in aliases], pk="alias", replace=True)
    return True
