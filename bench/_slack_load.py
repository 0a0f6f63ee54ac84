"""Load generator for bench_slack_ack.py, run as its own process: signed slash commands over loopback.

Usage: python bench/_slack_load.py URL SECRET TEXT CLIENTS REQUESTS_PER_CLIENT; prints JSON latencies (ms).
Each client keeps its connection open (as Slack does) and its first, connection-opening request is
not counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import urlencode

import httpx


def signed(secret: str, body: bytes) -> dict[str, str]:
    """Slack's v0 signature headers for a body."""
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


async def client(url: str, secret: str, text: str, n: int, worker: int, out: list[float]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(n + 1):
            body = urlencode({
                "command": "/leaderwatch", "text": text, "team_id": "T000", "channel_id": f"C{worker:04d}",
                "user_id": f"U{worker:04d}", "user_name": "bench", "response_url": "http://127.0.0.1:1/none",
                "trigger_id": f"{worker}.{i}", "api_app_id": "A000", "token": "x"}).encode()
            start = time.perf_counter()
            response = await http.post(url, content=body, headers=signed(secret, body))
            if i:  # the first request opens the connection: not a steady-state ack
                out.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")


async def main() -> None:
    url, secret, text = sys.argv[1], sys.argv[2], sys.argv[3]
    clients, per_client = int(sys.argv[4]), int(sys.argv[5])
    out: list[float] = []
    await asyncio.gather(*(client(url, secret, text, per_client, w, out) for w in range(clients)))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
