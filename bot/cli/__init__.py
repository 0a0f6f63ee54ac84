"""The `leaderwatch` command line: the parser and the commands (`main`), export and backup (`data`),
`doctor`, replay and backtest (`history`), `backfill`, and what they share (`common`).

The top layer of bot: may import `app` and everything below it; nothing imports it.
"""
