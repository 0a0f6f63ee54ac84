"""Fixtures the chat adapters' tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from leaderwatch.bot.commands import CommandContext
from tests.bot.fake_slack import FakeSlack
from tests.bot.test_slack import HttpSlack, serve


@pytest.fixture
async def http(fake: FakeSlack, ctx: CommandContext) -> AsyncIterator[HttpSlack]:
    """The Slack service in HTTP mode on the one aiohttp server, talking to the module's `fake` Slack,
    answering with the module's `ctx`; and an httpx client to post signed requests to it."""
    served = await serve(fake, ctx)
    yield served
    await served.client.aclose()
    await served.runner.cleanup()
    await served.service.stop()
