"""The fake Discord itself, through the real discord.py 2.7.1 client: components, edits, deletes, threads,
component interactions, and a client restart. What the adapter will rely on is checked here first."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import yarl

from leaderwatch.bot.chat.discord_bot import DiscordWebSocket, discord  # imported without the audioop warning
from tests.bot.fake_discord import (
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    MANAGER,
    TOKEN,
    FakeDiscord,
    component_interaction,
    keep_endpoints,
)
from tests.helpers import wait_until

EPHEMERAL = 64


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """The fake, discord.py pointed at it, its REST base and gateway restored after the test."""
    fake = await FakeDiscord().start()
    keep_endpoints(monkeypatch)
    discord.http.Route.BASE = fake.api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    yield fake
    await fake.stop()


@asynccontextmanager
async def connected(*items: type[discord.ui.DynamicItem[Any]]) -> AsyncIterator[discord.Client]:
    """A discord.Client logged in and connected to the fake, listening for the dynamic `items`."""
    intents = discord.Intents.none()
    intents.guilds = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    client.add_dynamic_items(*items)
    await client.login(TOKEN)
    connection = asyncio.create_task(client.connect(reconnect=False))
    ready = asyncio.ensure_future(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({ready, connection}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if connection in done:
            connection.result()  # the handshake failed: its exception fails the test
        assert ready in done, "no READY from the fake's gateway within 5 s"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await asyncio.gather(connection, return_exceptions=True)


class Ack(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"ack:(?P<alert>[0-9]+)"):
    """A persistent button: its custom id carries the alert, so it still works after a restart."""

    def __init__(self, alert: int) -> None:
        super().__init__(discord.ui.Button(label="Acknowledge", custom_id=f"ack:{alert}"))
        self.alert = alert

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> Ack:
        return cls(int(match["alert"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        who = "a manager" if interaction.permissions.manage_channels else "a member"
        await interaction.response.send_message(f"alert {self.alert} acknowledged by {who}", ephemeral=True)


class Resolve(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"resolve:(?P<alert>[0-9]+)"):
    """Updates the message it is on (callback type 7), taking the buttons away."""

    def __init__(self, alert: int) -> None:
        super().__init__(discord.ui.Button(label="Resolve", custom_id=f"resolve:{alert}"))
        self.alert = alert

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> Resolve:
        return cls(int(match["alert"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.edit_message(content=f"alert {self.alert} resolved", view=None)


class Later(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"later:(?P<alert>[0-9]+)"):
    """Acknowledges first (callback type 6), then edits the message through `@original`."""

    def __init__(self, alert: int) -> None:
        super().__init__(discord.ui.Button(label="Later", custom_id=f"later:{alert}"))
        self.alert = alert

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> Later:
        return cls(int(match["alert"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"alert {self.alert} snoozed")


class Chart(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"chart:(?P<board>[a-z]+)"):
    """Answers with an ephemeral reply carrying a file (Discord allows that)."""

    def __init__(self, board: str) -> None:
        super().__init__(discord.ui.Button(label="Chart", custom_id=f"chart:{board}"))
        self.board = board

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str]) -> Chart:
        return cls(match["board"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        chart = discord.File(io.BytesIO(b"\x89PNG"), filename=f"{self.board}.png")
        await interaction.response.send_message(f"{self.board} chart", file=chart, ephemeral=True)


def view_of(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


async def post_alert(client: discord.Client, *items: discord.ui.Item[Any]) -> discord.Message:
    """An alert in the channel with buttons, sent as the adapter will send it."""
    channel = client.get_partial_messageable(CHANNEL_ID, guild_id=GUILD_ID)
    return await channel.send("New leader on text: gemini-3-pro", view=view_of(*items))


# -- components ------------------------------------------------------------------------------------------

async def test_a_views_buttons_are_stored_with_the_message_and_read_back(fake: FakeDiscord) -> None:
    async with connected() as client:
        link = discord.ui.Button[Any](label="Board", url="https://lmarena.ai/leaderboard/text")
        sent = await post_alert(client, Ack(7), link)
    [stored] = fake.posts()
    [row] = stored["components"]
    assert row["type"] == 1
    assert [(b["type"], b["style"], b["label"], b.get("custom_id"), b.get("url"))
            for b in row["components"]] == [(2, 2, "Acknowledge", "ack:7", None),
                                            (2, 5, "Board", None, "https://lmarena.ai/leaderboard/text")]
    [read] = sent.components
    assert isinstance(read, discord.ActionRow)
    assert [(b.custom_id, b.url) for b in read.children if isinstance(b, discord.Button)] == [
        ("ack:7", None), (None, "https://lmarena.ai/leaderboard/text")]


def _button(custom_id: str, label: str = "Go") -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id}


def _select(custom_id: str, options: int = 2, value: str = "v") -> dict[str, Any]:
    return {"type": 3, "custom_id": custom_id,
            "options": [{"label": f"option {i}", "value": f"{value}{i}"} for i in range(options)]}


def _row(*components: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(components)}


INVALID_COMPONENTS = {
    "six buttons in a row": [_row(*(_button(f"b{i}") for i in range(6)))],
    "six action rows": [_row(_button(f"b{i}")) for i in range(6)],
    "an empty row": [_row()],
    "a button outside a row": [_button("b")],
    "a custom id of 101 characters": [_row(_button("x" * 101))],
    "a custom id twice in the message": [_row(_button("same")), _row(_button("same"))],
    "a label of 81 characters": [_row(_button("b", label="x" * 81))],
    "a link button with a custom id": [_row({"type": 2, "style": 5, "label": "L", "url": "https://x.invalid",
                                             "custom_id": "l"})],
    "a link button without url": [_row({"type": 2, "style": 5, "label": "L"})],
    "a select beside a button": [_row(_select("s"), _button("b"))],
    "a select with 26 options": [_row(_select("s", options=26))],
    "a select with no option": [_row(_select("s", options=0))],
    "an option value of 101 characters": [_row(_select("s", options=1, value="x" * 101))],
}


@pytest.mark.parametrize("components", INVALID_COMPONENTS.values(), ids=INVALID_COMPONENTS.keys())
async def test_components_discord_refuses_get_a_400_50035_and_nothing_is_posted(
        fake: FakeDiscord, components: list[dict[str, Any]]) -> None:
    # discord.py cannot build most of these (a View refuses a sixth button in a row): send raw JSON.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {TOKEN}"}) as http:
        url = f"{fake.api_url}/channels/{CHANNEL_ID}/messages"
        async with http.post(url, json={"content": "alert", "components": components}) as answer:
            assert answer.status == 400
            body = await answer.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body" and body["errors"]
    assert fake.posts() == []


async def test_the_largest_valid_components_are_taken(fake: FakeDiscord) -> None:
    components = [_row(*(_button(f"r{r}b{i}", label="x" * 80) for i in range(5))) for r in range(4)]
    components.append(_row(_select("s" * 100, options=25, value="x" * 98)))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {TOKEN}"}) as http:
        url = f"{fake.api_url}/channels/{CHANNEL_ID}/messages"
        async with http.post(url, json={"content": "alert", "components": components}) as answer:
            assert answer.status == 200
    assert fake.posts()[0]["components"] == components


# -- edits and deletes -----------------------------------------------------------------------------------

async def test_an_edit_changes_the_stored_message_once_and_keeps_the_rest(fake: FakeDiscord) -> None:
    async with connected() as client:
        sent = await post_alert(client, Ack(7))
        edited = await sent.edit(embeds=[discord.Embed(title="Resolved", description="back to second")])
    [stored] = fake.posts()
    assert fake.message(sent.id) is stored and len(fake.edits[sent.id]) == 1
    assert [(e["title"], e["description"]) for e in stored["embeds"]] == [("Resolved", "back to second")]
    assert stored["content"] == "New leader on text: gemini-3-pro"
    assert stored["components"][0]["components"][0]["custom_id"] == "ack:7"
    assert stored["edited_timestamp"] is not None and edited.edited_at is not None
    assert edited.embeds[0].title == "Resolved"


@pytest.mark.parametrize("who", ["a moderator", "the bot"])
async def test_a_deleted_message_is_unknown_to_edits_and_threads(fake: FakeDiscord, who: str) -> None:
    async with connected() as client:
        sent = await post_alert(client, Ack(7))
        if who == "the bot":
            await sent.delete()
        else:
            fake.delete_message(CHANNEL_ID, sent.id)
        with pytest.raises(discord.NotFound) as edit:
            await sent.edit(content="resolved")
        with pytest.raises(discord.NotFound) as thread:
            await sent.create_thread(name="details")
    assert edit.value.code == thread.value.code == 10008 and edit.value.text == "Unknown Message"
    assert fake.posts() == [] and sent.id not in fake.edits and fake.threads == {}
    with pytest.raises(KeyError):
        fake.message(sent.id)


# -- threads ---------------------------------------------------------------------------------------------

async def test_a_thread_from_a_message_has_its_id_once_and_keeps_its_own_history(fake: FakeDiscord) -> None:
    async with connected() as client:
        sent = await post_alert(client)
        thread = await sent.create_thread(name="gemini-3-pro leads text")
        assert isinstance(thread, discord.Thread)
        assert (thread.id, thread.parent_id, thread.owner_id, thread.name) == (
            sent.id, CHANNEL_ID, BOT_ID, "gemini-3-pro leads text")
        assert thread.type is discord.ChannelType.public_thread and not thread.archived
        with pytest.raises(discord.HTTPException) as again:
            await sent.create_thread(name="again")
        inside = client.get_partial_messageable(sent.id)
        await inside.send("why: +12 points over 3 days")
        await inside.send("board: https://lmarena.ai/leaderboard/text")
        history = [m.content async for m in inside.history()]
        # Discord tells the clients with the GUILDS intent: the thread is then in the client's cache.
        await wait_until(lambda: client.get_channel(sent.id) is not None, 5)
    assert again.value.status == 400 and again.value.code == 160004
    assert history == ["board: https://lmarena.ai/leaderboard/text", "why: +12 points over 3 days"]
    assert [m["content"] for m in fake.thread_posts(sent.id)] == history[::-1]
    assert [m["content"] for m in fake.posts()] == ["New leader on text: gemini-3-pro"]
    assert fake.posts()[0]["thread"]["id"] == str(sent.id)
    assert fake.threads[sent.id]["message_count"] == 2


async def test_a_click_on_a_button_in_a_thread_is_answered_in_the_thread(fake: FakeDiscord) -> None:
    async with connected(Ack) as client:
        sent = await post_alert(client)
        await sent.create_thread(name="details")
        await client.get_partial_messageable(sent.id).send("details", view=view_of(Ack(8)))
        [inside] = fake.thread_posts(sent.id)
        click = component_interaction("ack:8", message=inside, channel=fake.threads[sent.id])
        callback = await fake.interact(click)
    assert callback["data"]["content"] == "alert 8 acknowledged by a member"
    assert fake.original(click)["channel_id"] == str(sent.id)


# -- component interactions ------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "said"), [({}, "a member"), (MANAGER, "a manager")])
async def test_a_click_reaches_a_dynamic_item_and_its_ephemeral_reply_arrives(
        fake: FakeDiscord, who: dict[str, Any], said: str) -> None:
    async with connected(Ack) as client:
        await post_alert(client, Ack(7))
        click = component_interaction("ack:7", message=fake.posts()[0], **who)
        callback = await fake.interact(click)
    assert callback["type"] == 4
    assert callback["data"]["content"] == f"alert 7 acknowledged by {said}"
    assert callback["data"]["flags"] == EPHEMERAL
    assert fake.original(click)["flags"] & EPHEMERAL and fake.original(click)["channel_id"] == str(CHANNEL_ID)


async def test_a_click_after_a_restart_reaches_a_new_client_without_stored_views(fake: FakeDiscord) -> None:
    async with connected(Ack) as before:
        await post_alert(before, Ack(7))
    [stored] = fake.posts()
    async with connected(Ack) as after:
        assert not after.persistent_views
        callback = await fake.interact(component_interaction("ack:7", message=stored))
    assert len(fake.identifies) == 2
    assert callback["type"] == 4 and callback["data"]["flags"] == EPHEMERAL
    assert callback["data"]["content"] == "alert 7 acknowledged by a member"


async def test_an_update_changes_the_clicked_message_in_place(fake: FakeDiscord) -> None:
    async with connected(Resolve) as client:
        sent = await post_alert(client, Resolve(7))
        callback = await fake.interact(component_interaction("resolve:7", message=fake.posts()[0]))
    assert callback["type"] == 7
    [stored] = fake.posts()
    assert stored["content"] == "alert 7 resolved" and stored["components"] == []
    assert len(fake.edits[sent.id]) == 1 and stored["edited_timestamp"] is not None


async def test_a_deferred_update_then_an_edit_of_the_original_changes_the_clicked_message(
        fake: FakeDiscord) -> None:
    async with connected(Later) as client:
        sent = await post_alert(client, Later(7))
        click = component_interaction("later:7", message=fake.posts()[0])
        callback = await fake.interact(click)
        await fake.wait_for(lambda: fake.followups(click, "PATCH"))
    assert callback == {"type": 6}
    assert fake.original(click) is fake.posts()[0]
    assert fake.posts()[0]["content"] == "alert 7 snoozed" and len(fake.edits[sent.id]) == 1


async def test_an_ephemeral_reply_may_carry_a_file(fake: FakeDiscord) -> None:
    async with connected(Chart) as client:
        await post_alert(client, Chart("text"))
        click = component_interaction("chart:text", message=fake.posts()[0])
        callback = await fake.interact(click)
    assert callback["type"] == 4 and callback["data"]["flags"] == EPHEMERAL
    reply = fake.original(click)
    assert reply["flags"] & EPHEMERAL and reply["content"] == "text chart"
    assert [(a["filename"], a["ephemeral"]) for a in reply["attachments"]] == [("text.png", True)]
    assert len(fake.posts()) == 1  # an ephemeral reply is not in the channel


async def test_a_select_sends_the_chosen_values(fake: FakeDiscord) -> None:
    chosen: list[list[str]] = []

    class Boards(discord.ui.View):
        @discord.ui.select(custom_id="boards", options=[discord.SelectOption(label=b, value=b)
                                                        for b in ("text", "vision")])
        async def pick(self, interaction: discord.Interaction[Any], select: discord.ui.Select[Any]) -> None:
            chosen.append(select.values)
            await interaction.response.defer()

    async with connected() as client:
        client.add_view(Boards(timeout=None))
        await client.get_partial_messageable(CHANNEL_ID).send("Which board?", view=Boards(timeout=None))
        callback = await fake.interact(component_interaction(
            "boards", component_type=3, values=["vision"], message=fake.posts()[0]))
    assert callback == {"type": 6} and chosen == [["vision"]]


@pytest.mark.parametrize(("custom_id", "kind", "values"), [
    ("nope", 2, None), ("ack:7", 3, ["x"]), ("boards", 3, ["audio"]), ("boards", 3, ["text", "vision"])])
def test_clicks_discord_never_sends_cannot_be_built(custom_id: str, kind: int,
                                                    values: list[str] | None) -> None:
    message = {"id": "1", "channel_id": str(CHANNEL_ID), "components": [
        {"type": 1, "components": [{"type": 2, "style": 2, "label": "Ack", "custom_id": "ack:7"}]},
        {"type": 1, "components": [{"type": 3, "custom_id": "boards", "options": [
            {"label": "text", "value": "text"}, {"label": "vision", "value": "vision"}]}]}]}
    with pytest.raises(ValueError):
        component_interaction(custom_id, component_type=kind, values=values, message=message)
