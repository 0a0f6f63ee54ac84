"""`python -m leaderwatch`: the `leaderwatch` command line."""

import sys

from leaderwatch.bot.cli.main import main

sys.exit(main())
