"""leaderwatch: watches public AI leaderboards and tells Slack and Discord channels when the race changes.

The packages, each a folder at the top of the repository: `leaderwatch.sources` (the leaderboards and
the domain), `leaderwatch.alerts` (the rules, pure), `leaderwatch.storage` (the history database) and
`leaderwatch.bot` (commands, chat adapters, the pipeline, the CLI and the composition root). Imports
flow one way: bot -> alerts, storage, sources; storage -> alerts, sources; alerts -> sources.
"""
