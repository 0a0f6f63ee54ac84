"""The history database (SQLite through sqlite-utils): `db` opens it and applies the migrations; one
module per aggregate (`snapshots`, `standings`, `events`, `rule_states`, `subscriptions`, `outbox`,
`fanouts`, `status`, `organizations`, `retention`, `export`).

May import `leaderwatch.alerts` and `leaderwatch.sources`; the only package that imports sqlite_utils
(others type against `storage.db.Database`).
"""
