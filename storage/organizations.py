"""Organizations and aliases as stored for readers of the database (datasette, sqlite-utils CLI)."""

from __future__ import annotations

from sqlite_utils import Database

from leaderwatch.sources.identity import Identity


def sync_identity(db: Database, identity: Identity) -> None:
    """Write the identity tables in use (organization -> countries, alias -> key) to the database."""
    with db.atomic():
        db.execute("DELETE FROM organizations")
        db.table("organizations").insert_all(
            [{"name": identity.org_names.get(k, k), "countries": ",".join(v)}
             for k, v in sorted(identity.org_countries.items())], pk="name", replace=True)
        db.execute("DELETE FROM aliases")
        db.table("aliases").insert_all(
            [{"alias": a, "key": k, "origin": "identity"} for a, k in sorted(identity.aliases.items())],
            pk="alias", replace=True)
