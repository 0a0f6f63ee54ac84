"""Load generator for the Slack benchmarks, run as its own process: signed requests over loopback.

Usage:
  python bench/_slack_load.py URL SECRET TEXT CLIENTS REQUESTS_PER_CLIENT
      slash commands `/leaderwatch TEXT`, each client sending its next as soon as the last is acked
      (bench_slack_ack.py);
  python bench/_slack_load.py --clicks URL SECRET PAYLOADS_FILE BURSTS [SETTLED_URL]
      button clicks in bursts: PAYLOADS_FILE holds a JSON list, per client, of `block_actions`
      payloads; in each burst every client sends its next one at once, and the next burst starts when
      all are acked and, given SETTLED_URL, when a GET of it with `n` (the clicks sent so far) answers:
      the server's work for them is done (bench_buttons.py).
Prints JSON latencies (ms): the time from sending a request to its HTTP answer, Slack's ack. Each client
keeps its connection open (as Slack does); its first, connection-opening request is not counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx

Body = Callable[[int, int], bytes]
"""The body of a client's i-th slash command: (client, i) -> the form-encoded bytes Slack would post."""


def signed(secret: str, body: bytes) -> dict[str, str]:
    """Slack's v0 signature headers for a body."""
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def commands(text: str) -> Body:
    """`/leaderwatch TEXT` from each client's own user in its own channel."""
    def body(worker: int, i: int) -> bytes:
        return urlencode({
            "command": "/leaderwatch", "text": text, "team_id": "T000", "channel_id": f"C{worker:04d}",
            "user_id": f"U{worker:04d}", "user_name": "bench", "response_url": "http://127.0.0.1:1/none",
            "trigger_id": f"{worker}.{i}", "api_app_id": "A000", "token": "x"}).encode()
    return body


def clicks(path: Path) -> list[list[bytes]]:
    """Per client, its interaction payloads as the bodies Slack posts (`payload=<json>`)."""
    return [[urlencode({"payload": json.dumps(p)}).encode() for p in payloads]
            for payloads in json.loads(path.read_text(encoding="utf-8"))]


async def post(http: httpx.AsyncClient, url: str, secret: str, content: bytes) -> float:
    """One signed POST; its time to the answer (ms)."""
    start = time.perf_counter()
    response = await http.post(url, content=content, headers=signed(secret, content))
    if response.status_code != 200:
        raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")
    return (time.perf_counter() - start) * 1000


async def client(url: str, secret: str, body: Body, n: int, worker: int, out: list[float]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(n + 1):
            took = await post(http, url, secret, body(worker, i))
            if i:  # the first request opens the connection: not a steady-state ack
                out.append(took)


async def bursts(url: str, secret: str, path: Path, n: int, settled: str | None, out: list[float]) -> None:
    """`n` bursts (and a first, connection-opening one) of one click per client, all at once; each client
    sends its payloads in turn."""
    bodies = clicks(path)
    clients = len(bodies)
    https = [httpx.AsyncClient(timeout=30) for _ in range(clients)]
    try:
        async with httpx.AsyncClient(timeout=120) as control:
            for i in range(n + 1):
                took = await asyncio.gather(*(post(http, url, secret, own[i % len(own)])
                                              for own, http in zip(bodies, https, strict=True)))
                if i:
                    out += took
                if settled:  # `n`: how many clicks of this run must be answered
                    done = httpx.URL(settled).copy_merge_params({"n": clients * (i + 1)})
                    (await control.get(done)).raise_for_status()
    finally:
        for http in https:
            await http.aclose()


async def main(argv: list[str]) -> None:
    out: list[float] = []
    if argv[0] == "--clicks":
        await bursts(argv[1], argv[2], Path(argv[3]), int(argv[4]), argv[5] if len(argv) > 5 else None, out)
    else:
        url, secret, body = argv[0], argv[1], commands(argv[2])
        clients, per_client = int(argv[3]), int(argv[4])
        await asyncio.gather(*(client(url, secret, body, per_client, w, out) for w in range(clients)))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
