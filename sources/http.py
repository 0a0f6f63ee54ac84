"""Polite HTTP for sources: retries with backoff, Retry-After, and conditional requests."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx

from leaderwatch.sources.base import ShapeError, SourceError, looks_like_html

logger = logging.getLogger(__name__)

USER_AGENT = "leaderwatch/0.1 (+https://github.com/leaderwatch/leaderwatch; leaderboard change alerts)"
_T = TypeVar("_T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """The seconds a Retry-After header value asks for: delta seconds (`120`, `1.5`) or an HTTP date
    (`Wed, 21 Oct 2015 07:28:00 GMT`, counted from `now`); None when absent or unreadable.

    The one reader of Retry-After, for the sources, Slack and Discord alike.
    """
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" (RFC 5322: UTC, origin unknown) parses to a naive datetime
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds asked for by a response's Retry-After header, or None."""
    return parse_retry_after(response.headers.get("retry-after"), now)


def backoff(attempt: int, base: float, cap: float, factor: float = 1.0) -> float:
    """The wait before retrying after the `attempt`-th failure in a row: `base` doubled for each attempt
    after the first, times `factor` (jitter), never more than `cap` (attempt 0 counts as 1).

    The one exponential backoff, for fetches, polls and deliveries; each caller keeps its own numbers.
    """
    exponent = min(max(attempt, 1) - 1, 60)
    return min(cap, base * 2.0 ** exponent * factor)


@dataclass
class Validators:
    """What a server sent to make the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Fetcher:
    """Wraps the one shared `httpx.AsyncClient`; every source fetches through it.

    `get` returns the body, or None when the server answered 304 Not Modified to a conditional
    request. Network errors, 5xx and 429 are retried with exponential backoff and jitter.

    Validators (ETag / Last-Modified) received by a source take effect at once; the poller calls
    `rollback_validators` when that source's data was not stored, so the next request is not
    answered 304 for content leaderwatch never kept, and `commit_validators` when it was.
    """

    client: httpx.AsyncClient
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    validators: dict[str, Validators] = field(default_factory=dict)
    # Per source: the validators each URL had before this source's uncommitted fetches changed them.
    _undo: dict[str, dict[str, Validators | None]] = field(default_factory=dict, init=False, repr=False)

    def commit_validators(self, source: str) -> None:
        """Keep the validators `source`'s fetches received: their data was stored."""
        self._undo.pop(source, None)

    def rollback_validators(self, source: str) -> None:
        """Restore the validators `source`'s fetches replaced since the last commit (data not stored)."""
        for key, before in self._undo.pop(source, {}).items():
            if before is None:
                self.validators.pop(key, None)
            else:
                self.validators[key] = before

    async def get(
        self, source: str, url: str, *, params: dict[str, str | int] | None = None,
        conditional: bool = True,
    ) -> bytes | None:
        """GET `url`; raise SourceError naming `source` and the URL once retries are spent."""
        # Exactly the URL the client sends (`httpx.URL(url, params=None)` would drop a query in `url`).
        key = str(self.client.build_request("GET", url, params=params).url)
        headers = {}
        cached = self.validators.get(key) if conditional else None
        if cached and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified

        async def attempt() -> bytes | None:
            response = await self.client.get(url, params=params, headers=headers)
            if response.status_code == 304:
                return None
            _check_status(source, key, response)
            body = response.content
            if looks_like_html(body):  # a login wall or a moved page served as 200: drift
                raise ShapeError(source, key, "got an HTML page where data was expected")
            etag = response.headers.get("etag")
            modified = response.headers.get("last-modified")
            if etag or modified:
                self._undo.setdefault(source, {}).setdefault(key, self.validators.get(key))
                self.validators[key] = Validators(etag, modified)
            return body

        return await self._retrying(source, key, attempt)

    async def download(self, source: str, url: str, dest: Path) -> int:
        """Stream `url` into `dest` through a temporary file renamed into place; return its size.

        For files too large to hold in memory (LMArena's `full` split is ~58 MB). Retried like `get`;
        a failed attempt leaves no file behind.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")

        async def attempt() -> int:
            async with self.client.stream("GET", url) as response:
                _check_status(source, url, response)
                done = 0
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 20):
                        if done == 0 and looks_like_html(chunk):
                            raise ShapeError(source, url, "got an HTML page where data was expected")
                        out.write(chunk)
                        done += len(chunk)
                os.replace(partial, dest)
                return done

        try:
            return await self._retrying(source, url, attempt)
        finally:
            partial.unlink(missing_ok=True)

    async def _retrying(self, source: str, url: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run `attempt` until it returns: a network error or a status worth retrying waits the doubling
        backoff (or the server's Retry-After) and tries again; SourceError once the attempts are spent."""
        reason = "no attempt made"
        for n in range(1, self.attempts + 1):
            delay = backoff(n, self.base_delay, self.max_delay, 0.5 + random.random() / 2)  # noqa: S311
            try:
                return await attempt()
            except _Retry as retry:
                reason = retry.reason
                if retry.asked is not None:
                    delay = min(self.max_delay, retry.asked)
            except httpx.TransportError as exc:
                reason = f"network error: {type(exc).__name__}: {exc}"
            if n < self.attempts:
                logger.debug("%s: %s from %s, retry %d in %.1fs", source, reason, url, n, delay)
                await self.sleep(delay)
        raise SourceError(source, url, f"{reason} after {self.attempts} attempts")


class _Retry(Exception):
    """An answer worth asking again for (`reason`), after `asked` seconds if the server said."""

    def __init__(self, reason: str, asked: float | None) -> None:
        super().__init__(reason)
        self.reason, self.asked = reason, asked


def _check_status(source: str, url: str, response: httpx.Response) -> None:
    """Raise `_Retry` for a status worth retrying (429, 5xx), SourceError for another error status."""
    if response.status_code in RETRY_STATUSES:
        raise _Retry(f"HTTP {response.status_code}", retry_after_seconds(response))
    if response.is_error:
        raise SourceError(source, url, f"HTTP {response.status_code}")


def new_client(timeout: float = 30.0) -> httpx.AsyncClient:
    """The shared client: timeouts, a descriptive User-Agent, redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


def utcnow() -> datetime:
    """The current time in UTC (sources take it as fetch time)."""
    return datetime.now(UTC)


def size_text(n: int) -> str:
    """12345678 -> "12.3 MB"."""
    value, unit = float(n), "bytes"
    for bigger in ("KB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
