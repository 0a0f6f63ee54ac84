"""The shared Fetcher: retries with backoff, Retry-After, errors, and conditional requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from leaderwatch.sources.base import SourceError
from leaderwatch.sources.http import USER_AGENT, Fetcher, new_client, retry_after_seconds

URL = "https://example.org/board.json"
Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    """An async no-op `sleep` that records the delays it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make(handler: Handler, **kwargs: Any) -> tuple[Fetcher, Sleeps, list[httpx.Request]]:
    """A Fetcher over a MockTransport, its recorded sleeps, and the requests it made."""
    requests: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    sleeps = Sleeps()
    client = httpx.AsyncClient(transport=httpx.MockTransport(recording))
    return Fetcher(client, sleep=sleeps, **kwargs), sleeps, requests


def answers(*responses: httpx.Response) -> Handler:
    """A handler giving these responses in turn (the last one repeats)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


async def test_200_returns_body_and_passes_params():
    fetcher, sleeps, requests = make(answers(httpx.Response(200, content=b'[{"a": 1}]')))
    body = await fetcher.get("fake", URL, params={"offset": 100, "length": "100"})
    await fetcher.client.aclose()
    assert body == b'[{"a": 1}]'
    assert len(requests) == 1
    assert requests[0].url.params["offset"] == "100"
    assert requests[0].url.params["length"] == "100"
    assert sleeps.delays == []


async def test_429_with_retry_after_zero_is_retried_then_succeeds():
    fetcher, sleeps, requests = make(answers(
        httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, content=b"[]")))
    assert await fetcher.get("fake", URL) == b"[]"
    await fetcher.client.aclose()
    assert len(requests) == 2
    assert sleeps.delays == [0.0]


async def test_retry_after_seconds_is_honoured_and_capped():
    fetcher, sleeps, _ = make(answers(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "3600"}),
        httpx.Response(200, content=b"[]")), max_delay=60.0)
    assert await fetcher.get("fake", URL) == b"[]"
    await fetcher.client.aclose()
    # Retry-After replaces the backoff (no jitter on it), bounded by max_delay.
    assert sleeps.delays == [7.0, 60.0]


async def test_retry_after_as_http_date_is_honoured():
    when = datetime.now(UTC) + timedelta(seconds=30)
    fetcher, sleeps, _ = make(answers(
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(200, content=b"[]")))
    assert await fetcher.get("fake", URL) == b"[]"
    await fetcher.client.aclose()
    [delay] = sleeps.delays
    assert 25.0 <= delay <= 30.0


def test_retry_after_seconds_parses_both_forms():
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    def seconds(value: str) -> float | None:
        return retry_after_seconds(httpx.Response(429, headers={"Retry-After": value}), now)

    assert seconds("120") == 120.0
    assert seconds("-5") == 0.0
    assert seconds("Thu, 02 Jan 2025 03:05:05 GMT") == 60.0
    assert seconds("Thu, 02 Jan 2025 03:00:00 GMT") == 0.0  # a date in the past: retry now
    # RFC 5322 "-0000" means UTC of unknown origin; it must not crash on a naive datetime.
    assert seconds("Thu, 02 Jan 2025 03:05:05 -0000") == 60.0
    assert seconds("soon") is None
    assert retry_after_seconds(httpx.Response(429), now) is None


async def test_503_is_retried_with_exponential_backoff_then_succeeds():
    fetcher, sleeps, requests = make(answers(
        httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(200, content=b"[]")),
        attempts=4, base_delay=1.0)
    assert await fetcher.get("fake", URL) == b"[]"
    await fetcher.client.aclose()
    assert len(requests) == 4
    assert len(sleeps.delays) == 3
    # Attempt n waits base * 2**(n-1), jittered down to at most half of it.
    for n, delay in enumerate(sleeps.delays):
        assert 0.5 * 2**n <= delay <= 2**n, sleeps.delays
    assert sleeps.delays[0] < sleeps.delays[2]


async def test_backoff_is_capped_at_max_delay():
    fetcher, sleeps, _ = make(answers(httpx.Response(503)), attempts=6, base_delay=10.0, max_delay=25.0)
    with pytest.raises(SourceError):
        await fetcher.get("fake", URL)
    await fetcher.client.aclose()
    assert len(sleeps.delays) == 5
    assert all(d <= 25.0 for d in sleeps.delays)
    assert all(12.5 <= d for d in sleeps.delays[2:])


async def test_network_error_is_retried_then_source_error_names_source_url_and_attempts():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    fetcher, sleeps, _ = make(handler, attempts=3)
    with pytest.raises(SourceError) as info:
        await fetcher.get("fake", URL, params={"page": 2})
    await fetcher.client.aclose()
    assert len(calls) == 3
    assert len(sleeps.delays) == 2  # no sleep after the last attempt
    err = info.value
    assert err.source == "fake"
    assert err.url == URL + "?page=2"
    assert "network error: ConnectError: connection refused" in err.reason
    assert err.reason.endswith("after 3 attempts")
    assert str(err) == f"fake: {err.reason} ({URL}?page=2)"


async def test_network_error_then_success():
    state = {"calls": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["calls"] += 1
        if state["calls"] == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, content=b"{}")

    fetcher, sleeps, _ = make(handler)
    assert await fetcher.get("fake", URL) == b"{}"
    await fetcher.client.aclose()
    assert len(sleeps.delays) == 1


async def test_5xx_every_time_gives_source_error_after_all_attempts():
    fetcher, sleeps, requests = make(answers(httpx.Response(503)), attempts=4)
    with pytest.raises(SourceError, match=r"HTTP 503 after 4 attempts") as info:
        await fetcher.get("fake", URL)
    await fetcher.client.aclose()
    assert len(requests) == 4
    assert len(sleeps.delays) == 3
    assert info.value.source == "fake" and info.value.url == URL


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410])
async def test_4xx_is_not_retried(code):
    fetcher, sleeps, requests = make(answers(httpx.Response(code)))
    with pytest.raises(SourceError) as info:
        await fetcher.get("fake", URL)
    await fetcher.client.aclose()
    assert len(requests) == 1
    assert sleeps.delays == []
    assert info.value.reason == f"HTTP {code}"
    assert info.value.url == URL


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
    b"\n  <html><head><title>Login</title></head></html>",
])
async def test_html_body_is_a_source_error(body):
    fetcher, _, requests = make(answers(httpx.Response(200, content=body)))
    with pytest.raises(SourceError, match="HTML page") as info:
        await fetcher.get("fake", URL)
    await fetcher.client.aclose()
    assert len(requests) == 1
    assert info.value.source == "fake"


async def test_validators_are_stored_and_sent_back_then_304_returns_none():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=b"[1]", headers={
            "ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"})

    fetcher, _, requests = make(handler)
    assert await fetcher.get("fake", URL) == b"[1]"
    assert "if-none-match" not in requests[0].headers
    assert "if-modified-since" not in requests[0].headers
    stored = fetcher.validators[URL]
    assert (stored.etag, stored.last_modified) == ('"v1"', "Wed, 01 Jan 2025 00:00:00 GMT")

    assert await fetcher.get("fake", URL) is None
    assert requests[1].headers["if-none-match"] == '"v1"'
    assert requests[1].headers["if-modified-since"] == "Wed, 01 Jan 2025 00:00:00 GMT"

    # An unconditional request sends neither header and gets the body.
    assert await fetcher.get("fake", URL, conditional=False) == b"[1]"
    assert "if-none-match" not in requests[2].headers
    await fetcher.client.aclose()


async def test_validators_are_kept_per_url_including_params():
    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params["page"]
        if request.headers.get("if-none-match") == f'"p{page}"':
            return httpx.Response(304)
        return httpx.Response(200, content=page.encode(), headers={"ETag": f'"p{page}"'})

    fetcher, _, _ = make(handler)
    assert await fetcher.get("fake", URL, params={"page": 1}) == b"1"
    assert await fetcher.get("fake", URL, params={"page": 2}) == b"2"
    assert await fetcher.get("fake", URL, params={"page": 1}) is None
    await fetcher.client.aclose()
    assert set(fetcher.validators) == {URL + "?page=1", URL + "?page=2"}


async def test_last_modified_alone_makes_the_request_conditional():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-modified-since"):
            return httpx.Response(304)
        return httpx.Response(200, content=b"[]", headers={"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"})

    fetcher, _, requests = make(handler)
    assert await fetcher.get("fake", URL) == b"[]"
    assert await fetcher.get("fake", URL) is None
    await fetcher.client.aclose()
    assert "if-none-match" not in requests[1].headers


async def test_rolled_back_validators_make_the_next_request_unconditional():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v2"':
            return httpx.Response(304)
        etag = '"v2"' if request.url.params.get("v") == "2" else '"v1"'
        return httpx.Response(200, content=b"[]", headers={"ETag": etag})

    fetcher, _, requests = make(handler)
    await fetcher.get("fake", URL)
    fetcher.commit_validators("fake")
    assert fetcher.validators[URL].etag == '"v1"'
    await fetcher.get("fake", URL + "?v=2")
    await fetcher.get("fake", URL, conditional=False)
    # The data of these fetches was not stored: the validators fall back to the committed ones.
    fetcher.rollback_validators("fake")
    assert fetcher.validators[URL].etag == '"v1"'
    assert URL + "?v=2" not in fetcher.validators
    assert await fetcher.get("fake", URL + "?v=2") == b"[]"
    assert "if-none-match" not in requests[-1].headers
    # Another source's rollback leaves this one's validators alone.
    fetcher.rollback_validators("other")
    assert fetcher.validators[URL + "?v=2"].etag == '"v2"'
    await fetcher.client.aclose()


async def test_new_client_has_a_descriptive_user_agent_and_follows_redirects():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "https://example.org/new"})
        return httpx.Response(200, content=request.headers["user-agent"].encode())

    client = new_client()
    assert client.headers["User-Agent"] == USER_AGENT
    assert client.follow_redirects
    assert client.timeout.read == 30.0 and client.timeout.connect == 10.0
    await client.aclose()
    # The same settings, on a mock transport: the header goes out and redirects are followed.
    mock = httpx.AsyncClient(transport=httpx.MockTransport(handler), headers=dict(client.headers),
                             follow_redirects=client.follow_redirects)
    fetcher = Fetcher(mock, sleep=Sleeps())
    body = await fetcher.get("fake", "https://example.org/old")
    await mock.aclose()
    assert body is not None
    agent = body.decode()
    assert agent.startswith("leaderwatch/")
    assert "+https://" in agent  # a contact URL, as polite crawlers give
    assert "python-httpx" not in agent


async def test_a_query_in_the_url_is_part_of_the_validator_key_and_the_error_url():
    def handler(request: httpx.Request) -> httpx.Response:
        version = request.url.params.get("v", "")
        if request.headers.get("if-none-match") == f'"{version}"':
            return httpx.Response(304)
        if request.url.params.get("page") == "9":
            return httpx.Response(404)
        return httpx.Response(200, content=version.encode(), headers={"ETag": f'"{version}"'})

    fetcher, _, requests = make(handler)
    assert await fetcher.get("fake", URL + "?v=1") == b"1"
    # Another query on the same path is another resource: not conditional on v=1's ETag.
    assert await fetcher.get("fake", URL + "?v=2") == b"2"
    assert "if-none-match" not in requests[1].headers
    assert await fetcher.get("fake", URL + "?v=1") is None
    assert set(fetcher.validators) == {URL + "?v=1", URL + "?v=2"}
    with pytest.raises(SourceError) as info:
        await fetcher.get("fake", URL + "?v=3", params={"page": 9})
    await fetcher.client.aclose()
    # httpx replaces a query in the URL by `params`; the error names what was really requested.
    assert info.value.url == requests[-1].url == URL + "?page=9"
