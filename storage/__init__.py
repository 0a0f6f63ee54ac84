"""The history database, on SQLite (through sqlite-utils) or PostgreSQL (psycopg): `db` opens either and
applies the one set of migrations; `engine` names the surface both offer, `postgres` is PostgreSQL's side;
`leadership` the replicas' advisory lock, `migrate` the move from SQLite to PostgreSQL, `installations` the
Slack workspaces of a public app (tokens encrypted); one module per aggregate (`snapshots`, `standings`,
`events`, `rule_states`, `subscriptions`, `outbox`, `fanouts`, `status`, `organizations`, `retention`,
`export`).

May import `leaderwatch.alerts` and `leaderwatch.sources`; the only package that imports sqlite_utils and
psycopg (others type against `storage.db.Database`); cryptography only in `installations`.
"""
