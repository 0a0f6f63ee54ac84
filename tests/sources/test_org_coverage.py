"""Every organization in the top 50 of any recorded board has a row in the organization table."""

from __future__ import annotations

from pathlib import Path

import pytest

from leaderwatch.sources.base import MIXED
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources


@pytest.mark.whole_history
def test_every_top_50_organization_is_mapped(recordings: Path, identity: Identity) -> None:
    missing: dict[str, set[str]] = {}
    boards_seen = set()
    for source in all_sources(identity):
        for rec in source.recordings(recordings):
            for snap in source.load(rec):
                boards_seen.add(snap.board.id)
                for entry in snap.entries:
                    if entry.rank > 50 or not entry.organization or entry.organization == MIXED:
                        continue
                    # Epoch writes co-developers comma-joined ("Google DeepMind,Google"); others
                    # use commas inside one name ("EPAM Systems, Inc.").
                    orgs = entry.organization.split(",") if source.name == "epoch" else [entry.organization]
                    for org in orgs:
                        if org.strip() and not identity.is_known_organization(org):
                            missing.setdefault(org.strip(), set()).add(snap.board.id)
    assert len(boards_seen) > 60
    assert not missing, f"organizations without a row in sources/data/org_countries.csv: {missing}"


def test_well_known_labs_resolve_to_their_country(identity: Identity) -> None:
    expected = {"DeepSeek": ("CN",), "Alibaba": ("CN",), "OpenAI": ("US",), "Mistral AI": ("FR",),
                "Google": ("US",), "Anthropic": ("US",), "Cohere": ("CA",), "01 AI": ("CN",)}
    assert {org: identity.countries_of(org) for org in expected} == expected
