"""docker-compose.yml, read as data: no Docker engine runs here, so what can be checked without one is.

The replicas share one PostgreSQL (the URL names the postgres service's own user, password and database),
the proxy sends to every replica on the port the replicas serve, and every variable the file sets is one
the README documents.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.helpers import REPO

COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def replicas(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in data["services"].items() if name.startswith("replica")}


def test_two_replicas_share_the_postgres_service() -> None:
    data = compose()
    found = replicas(data)
    assert len(found) == 2
    pg = data["services"]["postgres"]["environment"]
    for name, svc in found.items():
        env = svc["environment"]
        url = urlsplit(env["LEADERWATCH_DB"])
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.username, url.password, url.path.lstrip("/")) == (
            "postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]), name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        # chat over HTTP on both platforms: the proxy can send any request to any replica
        assert env["LEADERWATCH_SLACK_MODE"] == "http"
        assert env["LEADERWATCH_DISCORD_MODE"] == "http"
    assert len({str(svc["environment"]) for svc in found.values()}) == 1, "replicas are configured alike"


def test_the_proxy_sends_to_every_replica_on_their_port() -> None:
    data = compose()
    caddyfile = data["configs"]["caddyfile"]["content"]
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    for name, svc in replicas(data).items():
        assert f"{name}:{svc['environment']['LEADERWATCH_HTTP_PORT']}" in upstreams.group(1).split()
    assert set(data["services"]["proxy"]["depends_on"]) == set(replicas(data))


def test_every_variable_the_file_sets_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for svc in replicas(compose()).values():
        for name in svc["environment"]:
            assert f"`{name}`" in readme, f"{name} is set in docker-compose.yml but not in README"
