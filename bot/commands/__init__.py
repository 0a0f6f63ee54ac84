"""The command layer behind `/leaderwatch` on Slack, Discord and the console (`leaderwatch query`).

`registry` holds the table of commands and `dispatch`; `names` resolves what users type (boards,
groups, models, dates) for the commands and the CLI; `channel` reads a channel's defaults; `history`
reads a board as of a date and windows back from it; `messages` holds the texts; `questions`, `race`,
`versus`, `report`, `charts` and `configuration` are the handlers, by topic. Importing this package
registers every command. It may import `leaderwatch.bot.charts`, `leaderwatch.bot.runtime.metrics`,
alerts, sources and storage, never a chat library or another bot sub-package; handler modules import
`registry`, never this package.
"""

# isort: off
# Registration order is the order `help` lists them in: questions, the race, charts, configuration.
from leaderwatch.bot.commands import questions, race, versus, report, charts, configuration  # noqa: F401
# isort: on
from leaderwatch.bot.commands.registry import (
    COMMANDS,
    Command,
    CommandContext,
    Invocation,
    UserError,
    apology,
    command,
    database_trouble,
    dispatch,
    parse_line,
    usage_error,
)

__all__ = ["COMMANDS", "Command", "CommandContext", "Invocation", "UserError", "apology", "command",
           "database_trouble", "dispatch", "parse_line", "usage_error"]
