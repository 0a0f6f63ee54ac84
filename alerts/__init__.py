"""The rules (pure Python, no I/O): rule definitions and rule sets (`models`, `ruleset`), the engine
(`rules`), why a rule fired or not (`explain`), matching events to subscriptions (`matching`), and how
an alert and numbers read (`formatting`).

May import `leaderwatch.sources` (the domain) and the standard library only: no httpx, no database,
no chat library. Reading its own package data (the shipped default rules) is its only file access.
"""
