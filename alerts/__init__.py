"""Rules, subscriptions matching, outbox and formatting (pure Python, no I/O)."""
