"""Command layer, chat adapters, CLI and the composition root."""
