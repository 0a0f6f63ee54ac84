"""What both Discord adapters name alike, with no library: the gateway's (`discord_bot`, discord.py) and the
Interactions Endpoint's (`discord_http`, plain JSON). One definition, so the two answer the same commands
in the same way."""

from __future__ import annotations

PLATFORM = "discord"
GROUP = "leaderwatch"
"""The slash command of the questions (`/leaderwatch top ...`)."""
ADMIN_GROUP = "leaderwatch-admin"
"""The slash command of the configuration commands, shown to members with Manage Channels."""
ACK_BUDGET_SECONDS = 2.0
"""How long a command may take before we defer (Discord allows 3 s, network included)."""
EPHEMERAL_FLAG = 64
"""Message flag: only the person who asked sees the answer."""
CHART_FILE = "chart.png"
"""The file name of a reply's chart, attached to its first message and shown as its first embed's image."""
