"""Leaderboard sources: one module per service, the domain, identity and HTTP."""
