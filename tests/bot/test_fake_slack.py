"""The fake Slack itself, driven by the real slack_sdk / slack_bolt over real HTTP and websockets.

Threads, edits, deletions, Block Kit limits, App Home, DMs and permalinks answer as Slack's Web API
does; what Slack sends an app (block_actions, app_home_opened) reaches a real Bolt app, signed over
HTTP and as Socket Mode envelopes; response_url answers act on the message they are about.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.bot.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    FakeSlack,
    app_home_opened_event,
    block_actions_payload,
    block_kit_errors,
    interactive_body,
    signed_event,
    signed_headers,
)

pytestmark = pytest.mark.usefixtures("slack_environment")

CHANNEL = "C0ALERTS"
USER = "U0ADA"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    yield slack
    await slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, text: str = "Mute", value: str = "v", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text},
            "value": value, **extra}


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def confirm(**changes: Any) -> dict[str, Any]:
    dialog = {"title": {"type": "plain_text", "text": "Sure?"}, "text": {"type": "mrkdwn", "text": "Really"},
              "confirm": {"type": "plain_text", "text": "Yes"}, "deny": {"type": "plain_text", "text": "No"}}
    return {**dialog, **changes}


ALERT_BLOCKS = [section("*Overtake on lmarena/text*"),
                actions(button("mute", "Mute for a day", "lmarena/text", style="danger"),
                        {"type": "overflow", "action_id": "more",
                         "options": [option("Snooze 1 h", "1h"), option("Snooze 1 d", "1d")]})]


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


# -- threads (chat.postMessage thread_ts, conversations.history, conversations.replies) -------------------

async def test_a_reply_stays_in_its_thread(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Overtake", metadata={
        "event_type": "leaderwatch_alert", "event_payload": {"delivery_key": "k"}})
    reply = await client.chat_postMessage(channel=CHANNEL, text="Chart", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]

    history = await client.conversations_history(channel=CHANNEL)
    [shown] = history["messages"]
    assert shown["ts"] == parent["ts"] and shown["thread_ts"] == parent["ts"]
    assert shown["reply_count"] == 1 and shown["latest_reply"] == reply["ts"]
    assert shown["reply_users"] == [BOT_USER_ID] and "metadata" not in shown

    thread = await client.conversations_replies(channel=CHANNEL, ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["Overtake", "Chart"]
    assert thread["messages"][1]["parent_user_id"] == BOT_USER_ID and "metadata" not in thread["messages"][0]
    with_metadata = await client.conversations_replies(channel=CHANNEL, ts=parent["ts"],
                                                       include_all_metadata=True)
    assert with_metadata["messages"][0]["metadata"]["event_payload"] == {"delivery_key": "k"}

    assert [p.text for p in fake.posts(CHANNEL)] == ["Overtake", "Chart"]
    assert [p.text for p in fake.top_level(CHANNEL)] == ["Overtake"]
    assert [p.thread_ts for p in fake.replies(CHANNEL, parent["ts"])] == [parent["ts"]]


async def test_history_lists_broadcast_replies_too(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Overtake")
    await client.chat_postMessage(channel=CHANNEL, text="quiet", thread_ts=parent["ts"])
    loud = await client.chat_postMessage(channel=CHANNEL, text="loud", thread_ts=parent["ts"],
                                         reply_broadcast=True)
    history = await client.conversations_history(channel=CHANNEL)
    assert [(m["text"], m.get("subtype")) for m in history["messages"]] == [
        ("loud", "thread_broadcast"), ("Overtake", None)]
    assert history["messages"][1]["reply_count"] == 2
    assert fake.posts(CHANNEL)[-1].reply_broadcast and loud["message"]["subtype"] == "thread_broadcast"


async def test_a_reply_to_a_missing_or_deleted_parent_is_still_accepted(fake: FakeSlack,
                                                                        client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Overtake")
    await fake.delete(CHANNEL, parent["ts"])
    await client.chat_postMessage(channel=CHANNEL, text="to the deleted", thread_ts=parent["ts"])
    await client.chat_postMessage(channel=CHANNEL, text="to nothing", thread_ts="1.000001")
    assert [(p.text, p.thread_ts) for p in fake.posts(CHANNEL)] == [
        ("to the deleted", parent["ts"]), ("to nothing", "1.000001")]
    assert (await client.conversations_history(channel=CHANNEL))["messages"] == []


async def test_replies_of_a_missing_or_deleted_message_is_thread_not_found(fake: FakeSlack,
                                                                            client: AsyncWebClient) -> None:
    ts = str((await client.chat_postMessage(channel=CHANNEL, text="Overtake"))["ts"])
    assert await error_of(client.conversations_replies(channel=CHANNEL, ts="1.000001")) == "thread_not_found"
    assert await error_of(client.conversations_replies(channel="C0OTHER", ts=ts)) == "thread_not_found"
    await fake.delete(CHANNEL, ts)
    assert await error_of(client.conversations_replies(channel=CHANNEL, ts=ts)) == "thread_not_found"
    fake.errors[("conversations.replies", CHANNEL)] = "channel_not_found"
    assert await error_of(client.conversations_replies(channel=CHANNEL, ts=ts)) == "channel_not_found"


async def test_replies_pages_and_takes_any_ts_of_the_thread(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="p")
    replies = [await client.chat_postMessage(channel=CHANNEL, text=f"r{i}", thread_ts=parent["ts"])
               for i in range(3)]
    person = await fake.user_post(CHANNEL, "thanks", user=USER, thread_ts=parent["ts"])
    first = await client.conversations_replies(channel=CHANNEL, ts=replies[1]["ts"], limit=2)
    assert [m["text"] for m in first["messages"]] == ["p", "r0"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    rest = await client.conversations_replies(channel=CHANNEL, ts=parent["ts"], limit=2, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["r1", "r2"] and rest["has_more"]
    newer = await client.conversations_replies(channel=CHANNEL, ts=parent["ts"], oldest=replies[2]["ts"])
    assert [m["text"] for m in newer["messages"]] == ["p", "thanks"]
    assert newer["messages"][1]["user"] == USER and "bot_id" not in newer["messages"][1]
    history = await client.conversations_history(channel=CHANNEL)
    assert history["messages"][0]["reply_users"] == sorted([BOT_USER_ID, person.user])


# -- chat.update, chat.delete, a person deleting ---------------------------------------------------------

async def test_update_replaces_the_message_and_counts_edits(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Overtake", blocks=ALERT_BLOCKS,
                                           metadata={"event_type": "a", "event_payload": {"k": 1}})
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Overtake (muted)")
    [message] = fake.posts(CHANNEL)
    assert message.text == "Overtake (muted)" and message.blocks == ALERT_BLOCKS  # absent blocks: kept
    answer = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Overtake (done)",
                                      blocks=[section("*Done*")],
                                      metadata={"event_type": "a", "event_payload": {}})
    assert answer["ts"] == posted["ts"] and answer["message"]["blocks"][0]["text"]["text"] == "*Done*"
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Overtake", blocks=[])
    assert message.blocks is None and message.metadata == {"event_type": "a", "event_payload": {}}
    assert [e["text"] for e in message.edits] == ["Overtake (muted)", "Overtake (done)", "Overtake"]
    assert {e["via"] for e in message.edits} == {"chat.update"}
    [shown] = (await client.conversations_history(channel=CHANNEL))["messages"]
    assert shown["edited"] == {"user": BOT_USER_ID, "ts": message.edits[-1]["ts"]}


async def test_update_of_a_gone_or_foreign_message_fails(fake: FakeSlack, client: AsyncWebClient) -> None:
    ts = str((await client.chat_postMessage(channel=CHANNEL, text="Overtake"))["ts"])
    person = await fake.user_post(CHANNEL, "hello", user=USER)

    def update(ts: str, **changes: Any) -> Any:
        return client.chat_update(channel=CHANNEL, ts=ts, text="x", **changes)

    assert await error_of(update(person.ts)) == "cant_update_message"
    assert await error_of(update("1.000001")) == "message_not_found"
    assert await error_of(update(ts, blocks=[actions(button("a", "x" * 76))])) == "invalid_blocks"
    await fake.delete(CHANNEL, ts)
    assert await error_of(update(ts)) == "message_not_found"
    assert fake.channels[CHANNEL][0].edits == []


async def test_the_bot_deletes_its_own_messages_only(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Overtake")
    person = await fake.user_post(CHANNEL, "hello", user=USER)
    assert await error_of(client.chat_delete(channel=CHANNEL, ts=person.ts)) == "cant_delete_message"
    answer = await client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    assert answer["ts"] == posted["ts"]
    assert await error_of(client.chat_delete(channel=CHANNEL, ts=posted["ts"])) == "message_not_found"
    assert [m["text"] for m in (await client.conversations_history(channel=CHANNEL))["messages"]] == ["hello"]
    assert fake.posts(CHANNEL) == [person] and fake.channels[CHANNEL][0].deleted


# -- Block Kit limits ------------------------------------------------------------------------------------

INVALID_BLOCKS = {
    "51 blocks": [section("x")] * 51,
    "26 elements in an actions block": [actions(*(button(f"b{i}") for i in range(26)))],
    "button text of 76 characters": [actions(button("b", "x" * 76))],
    "button text in mrkdwn": [actions({**button("b"), "text": {"type": "mrkdwn", "text": "Mute"}})],
    "button value of 2001 characters": [actions(button("b", value="x" * 2001))],
    "button style other than primary or danger": [actions(button("b", style="warning"))],
    "action_id of 256 characters": [actions(button("x" * 256))],
    "action_id used twice in a message": [actions(button("b")), section("x") | {"accessory": button("b")}],
    "confirm without deny": [actions(button("b", confirm={
        k: v for k, v in confirm().items() if k != "deny"}))],
    "confirm title of 101 characters": [actions(button("b", confirm=confirm(
        title={"type": "plain_text", "text": "x" * 101})))],
    "overflow with one option": [actions({"type": "overflow", "action_id": "o",
                                          "options": [option("a", "a")]})],
    "overflow with six options": [actions({"type": "overflow", "action_id": "o",
                                           "options": [option(str(i), str(i)) for i in range(6)]})],
    "option text of 76 characters": [actions({"type": "overflow", "action_id": "o",
                                              "options": [option("x" * 76, "a"), option("b", "b")]})],
    "option value of 151 characters": [actions({"type": "overflow", "action_id": "o",
                                                "options": [option("a", "x" * 151), option("b", "b")]})],
    "static_select with 101 options": [actions({"type": "static_select", "action_id": "s",
                                                "options": [option(str(i), str(i)) for i in range(101)]})],
}

VALID_BLOCKS = [
    [section("x")] * 50,
    [actions(*(button(f"b{i}") for i in range(25)))],
    [actions(button("x" * 255, "x" * 75, "x" * 2000, style="primary", confirm=confirm(style="danger")))],
    [actions({"type": "overflow", "action_id": "o", "options": [option(str(i), "x" * 150) for i in range(5)]},
             {"type": "static_select", "action_id": "s", "options": [option("x" * 75, "v")] * 100,
              "placeholder": {"type": "plain_text", "text": "x" * 150}})],
    [section("x") | {"accessory": button("b")}, actions(button("c"))],
]


@pytest.mark.parametrize("blocks", INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
async def test_blocks_beyond_slacks_limits_are_invalid_blocks(fake: FakeSlack, client: AsyncWebClient,
                                                              blocks: list[dict[str, Any]]) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert raised.value.response["response_metadata"]["messages"] == block_kit_errors(blocks) != []
    assert fake.posts(CHANNEL) == []


@pytest.mark.parametrize("blocks", VALID_BLOCKS)
async def test_blocks_at_slacks_limits_are_taken(fake: FakeSlack, client: AsyncWebClient,
                                                 blocks: list[dict[str, Any]]) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    assert fake.posts(CHANNEL)[0].blocks == blocks


def test_block_kit_errors_point_at_the_field() -> None:
    assert block_kit_errors([section("x"), actions(button("b", "x" * 76))]) == [
        "[ERROR] must be less than 76 characters [json-pointer:/blocks/1/elements/0/text/text]"]


# -- App Home (views.publish) ------------------------------------------------------------------------------

async def test_views_publish_keeps_the_latest_home_per_user(fake: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.views_publish(user_id=USER, view={"type": "home", "blocks": [section("Welcome")]})
    assert first["view"]["type"] == "home" and first["view"]["blocks"][0]["block_id"]
    second = await client.views_publish(user_id=USER, hash=first["view"]["hash"], view={
        "type": "home", "blocks": [section("Subscriptions"), actions(button("unsubscribe"))]})
    assert fake.home[USER] == second["view"] and second["view"]["id"] == first["view"]["id"]
    assert fake.home[USER]["blocks"][0]["text"]["text"] == "Subscriptions"
    assert fake.home_publishes == {USER: 2}
    empty = {"type": "home", "blocks": []}
    stale = client.views_publish(user_id=USER, hash=first["view"]["hash"], view=empty)
    assert await error_of(stale) == "hash_conflict"


async def test_views_publish_refuses_a_modal_and_too_many_blocks(fake: FakeSlack,
                                                                   client: AsyncWebClient) -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": [section("x")]}
    assert await error_of(client.views_publish(user_id=USER, view=modal)) == "invalid_arguments"
    await client.views_publish(user_id=USER, view={"type": "home", "blocks": [section("x")] * 100})
    with pytest.raises(SlackApiError) as raised:
        await client.views_publish(user_id=USER, view={"type": "home", "blocks": [section("x")] * 101})
    assert raised.value.response["error"] == "invalid_arguments"
    assert raised.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"]
    assert fake.home_publishes == {USER: 1}


# -- direct messages, permalinks ---------------------------------------------------------------------------

async def test_a_dm_channel_takes_messages_and_files(fake: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.conversations_open(users=USER)
    dm = opened["channel"]["id"]
    assert dm == "D" + USER
    await client.chat_postMessage(channel=dm, text="Your chart")
    await client.files_upload_v2(channel=dm, content=b"\x89PNG", filename="chart.png", title="Chart",
                                 initial_comment="lmarena/text")
    assert [p.text for p in fake.posts(dm)] == ["Your chart", "lmarena/text"]
    assert [u.filename for u in fake.shared(dm)] == ["chart.png"]
    by_user_id = await client.chat_postMessage(channel=USER, text="also here")
    assert by_user_id["channel"] == dm


async def test_permalinks_name_the_message_and_its_thread(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Overtake")
    reply = await client.chat_postMessage(channel=CHANNEL, text="Chart", thread_ts=parent["ts"])
    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=parent["ts"])
    assert link["permalink"] == f"https://test.slack.com/archives/{CHANNEL}/p{parent['ts'].replace('.', '')}"
    in_thread = await client.chat_getPermalink(channel=CHANNEL, message_ts=reply["ts"])
    assert in_thread["permalink"].endswith(f"/p{reply['ts'].replace('.', '')}?thread_ts={parent['ts']}"
                                           f"&cid={CHANNEL}")
    missing = client.chat_getPermalink(channel=CHANNEL, message_ts="1.000001")
    assert await error_of(missing) == "message_not_found"


# -- response_url -----------------------------------------------------------------------------------------

async def alert(client: AsyncWebClient) -> str:
    return str((await client.chat_postMessage(channel=CHANNEL, text="Overtake", blocks=ALERT_BLOCKS))["ts"])


async def test_a_response_url_answer_replaces_the_message_by_default(fake: FakeSlack,
                                                                      client: AsyncWebClient) -> None:
    ts = await alert(client)
    url = fake.block_actions(CHANNEL, ts, "mute", user_id=USER)["response_url"]
    response = await AsyncWebhookClient(url).send(text="Muted", blocks=[section("Muted for a day")])
    assert (response.status_code, response.body) == (200, "ok")
    [message] = fake.posts(CHANNEL)
    assert message.text == "Muted" and message.blocks == [section("Muted for a day")]
    assert [e["via"] for e in message.edits] == ["response_url"] and fake.ephemerals == []


async def test_a_response_url_answer_not_replacing_is_a_new_message(fake: FakeSlack,
                                                                     client: AsyncWebClient) -> None:
    ts = await alert(client)
    url = fake.block_actions(CHANNEL, ts, "mute", user_id=USER)["response_url"]
    await AsyncWebhookClient(url).send(text="Only you", response_type="ephemeral", replace_original=False)
    await AsyncWebhookClient(url).send_dict({"text": "Everyone", "response_type": "in_channel",
                                             "replace_original": False, "thread_ts": ts})
    assert [(e.channel, e.user, e.text) for e in fake.ephemerals] == [(CHANNEL, USER, "Only you")]
    assert [(p.text, p.thread_ts, p.edits) for p in fake.posts(CHANNEL)] == [
        ("Overtake", None, []), ("Everyone", ts, [])]
    assert [body.get("replace_original") for _, body in fake.responses] == [False, False]


async def test_a_response_url_answer_deletes_the_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    ts = await alert(client)
    url = fake.block_actions(CHANNEL, ts, "mute")["response_url"]
    response = await AsyncWebhookClient(url).send(text="", delete_original=True)
    assert response.status_code == 200 and fake.posts(CHANNEL) == []
    refused = await AsyncWebhookClient(url).send(text="x", blocks=[actions(button("b", "x" * 76))])
    assert (refused.status_code, refused.body) == (400, "invalid_blocks")


# -- what Slack sends the app, through a real Bolt app -----------------------------------------------------

def bolt_app(fake: FakeSlack) -> AsyncApp:
    """A Bolt app whose `mute` button listener answers on the response_url (a new ephemeral message) and
    whose Home tab listener publishes a view."""
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url),
                   signing_secret=SIGNING_SECRET)

    @app.action("mute")
    async def mute(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = body["actions"][0]
        await respond(text=f"Muted {action['value']} ({body['container']['message_ts']})",
                      response_type="ephemeral", replace_original=False)

    @app.action("more")
    async def more(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await respond(text=f"Snoozed {body['actions'][0]['selected_option']['value']}", replace_original=True)

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            section(f"Hello <@{event['user']}> ({event['tab']}, {event['channel']})")]})

    return app


def bolt_request(body: bytes, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """The request Bolt's HTTP adapters build from what Slack posts to the Request URL."""
    received: dict[str, str | Sequence[str]] = dict(headers)
    return AsyncBoltRequest(body=body.decode(), headers=received)


async def test_bolt_receives_a_signed_block_actions(fake: FakeSlack, client: AsyncWebClient) -> None:
    ts = await alert(client)
    payload = fake.block_actions(CHANNEL, ts, "mute", user_id=USER)
    assert payload["type"] == "block_actions" and payload["user"]["id"] == USER
    assert payload["container"] == {"type": "message", "message_ts": ts, "channel_id": CHANNEL,
                                     "is_ephemeral": False}
    [action] = payload["actions"]
    assert (action["type"], action["value"], action["style"]) == ("button", "lmarena/text", "danger")
    assert action["block_id"] == payload["message"]["blocks"][1]["block_id"]

    body = interactive_body(payload)
    response = await bolt_app(fake).async_dispatch(bolt_request(body, signed_headers(body)))
    assert response.status == 200
    await fake.wait_for(lambda: fake.ephemerals)
    assert [(e.user, e.text) for e in fake.ephemerals] == [(USER, f"Muted lmarena/text ({ts})")]
    assert fake.posts(CHANNEL)[0].edits == []


async def test_bolt_refuses_a_block_actions_signed_with_another_secret(fake: FakeSlack,
                                                                       client: AsyncWebClient) -> None:
    body = interactive_body(fake.block_actions(CHANNEL, await alert(client), "mute"))
    response = await bolt_app(fake).async_dispatch(bolt_request(body, signed_headers(body, "another-secret")))
    assert response.status == 401


async def test_an_overflow_choice_carries_the_selected_option(fake: FakeSlack,
                                                               client: AsyncWebClient) -> None:
    ts = await alert(client)
    payload = fake.block_actions(CHANNEL, ts, "more", selected="1d")
    assert payload["actions"][0]["selected_option"] == option("Snooze 1 d", "1d")
    body = interactive_body(payload)
    await bolt_app(fake).async_dispatch(bolt_request(body, signed_headers(body)))
    await fake.wait_for(lambda: fake.posts(CHANNEL)[0].edits)
    assert fake.posts(CHANNEL)[0].text == "Snoozed 1d"


def test_the_builder_only_uses_elements_the_surface_shows() -> None:
    message = {"ts": "1.000001", "blocks": ALERT_BLOCKS}
    with pytest.raises(ValueError, match="no element with action_id 'gone'"):
        block_actions_payload("gone", message=message)
    with pytest.raises(ValueError, match="offers no option '1w'"):
        block_actions_payload("more", selected="1w", message=message)
    with pytest.raises(ValueError, match="the message or the view"):
        block_actions_payload("mute")


async def test_a_home_tab_button_is_a_view_container(fake: FakeSlack, client: AsyncWebClient) -> None:
    published = await client.views_publish(user_id=USER, view={"type": "home",
                                                              "blocks": [actions(button("mute"))]})
    payload = block_actions_payload("mute", view=fake.home[USER], user_id=USER)
    assert payload["container"] == {"type": "view", "view_id": published["view"]["id"]}
    assert "response_url" not in payload and "message" not in payload and payload["view"] == fake.home[USER]


async def test_bolt_receives_a_signed_app_home_opened(fake: FakeSlack) -> None:
    event = app_home_opened_event(USER)
    assert event["type"] == "event_callback" and event["team_id"] == TEAM_ID
    assert event["event"]["type"] == "app_home_opened" and event["event"]["tab"] == "home"
    body, headers = signed_event(event)
    response = await bolt_app(fake).async_dispatch(bolt_request(body, headers))
    assert response.status == 200
    await fake.wait_for(lambda: USER in fake.home)
    assert fake.home[USER]["blocks"][0]["text"]["text"] == f"Hello <@{USER}> (home, D{USER})"
    assert "view" in app_home_opened_event(USER, view=fake.home[USER])["event"]


async def test_socket_mode_delivers_interactions_and_events(fake: FakeSlack, client: AsyncWebClient) -> None:
    ts = await alert(client)
    handler = AsyncSocketModeHandler(bolt_app(fake), APP_TOKEN)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        ack = await fake.send_interactive(fake.block_actions(CHANNEL, ts, "mute", user_id=USER))
        assert ack["envelope_id"] == "env-1"
        await fake.wait_for(lambda: fake.ephemerals)
        assert fake.ephemerals[0].text == f"Muted lmarena/text ({ts})"

        ack = await fake.send_event(app_home_opened_event(USER))
        assert ack["envelope_id"] == "env-2"
        await fake.wait_for(lambda: USER in fake.home)
        assert [c.token for c in fake.called("apps.connections.open")] == [APP_TOKEN]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
