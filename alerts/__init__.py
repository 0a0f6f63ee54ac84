"""The rules (pure Python, no I/O): rule kinds, one module each, and their registry (`kinds`); rules,
events and states (`models`) and rule sets (`ruleset`); what a rule sees of an update (`context`); the
engine (`rules`) and `explain`, which runs it again for `/leaderwatch why`; matching events to
subscriptions (`matching`); and how alerts, numbers and durations read (`formatting`, `texts`,
`durations`).

May import `leaderwatch.sources` (the domain) and the standard library only: no httpx, no database,
no chat library. Reading its own package data (the shipped default rules) is its only file access.
"""
