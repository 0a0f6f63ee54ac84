"""What the CLI's commands share: the board a name means at the terminal."""

from __future__ import annotations

from leaderwatch.bot.app import App
from leaderwatch.bot.commands.names import find_board
from leaderwatch.storage import snapshots

BOARDS_HINT = "`leaderwatch boards` lists them."
NO_BOARD_STORED = "No board is stored yet: run `leaderwatch import --recordings DIR` or `leaderwatch poll`."


def board_of(app: App, name: str) -> str:
    """The stored board a name means, resolved as in chat (id, unique prefix or name); UserError else."""
    ids = [b.id for b in snapshots.boards(app.db)]
    return find_board(name, ids, BOARDS_HINT if ids else NO_BOARD_STORED)
