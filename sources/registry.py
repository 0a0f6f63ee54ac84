"""The registry of sources: every leaderboard service leaderwatch knows."""

from __future__ import annotations

from collections.abc import Mapping

from leaderwatch.sources.aider import AiderSource
from leaderwatch.sources.base import Board, Source
from leaderwatch.sources.epoch import EpochSource
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.livebench import LiveBenchSource
from leaderwatch.sources.lmarena import LmarenaSource
from leaderwatch.sources.openllm import OpenLLMSource
from leaderwatch.sources.openvlm import OpenVLMSource
from leaderwatch.sources.swebench import SWEBenchSource

SOURCE_CLASSES = (LmarenaSource, OpenLLMSource, AiderSource, LiveBenchSource, SWEBenchSource, EpochSource,
                  OpenVLMSource)


def all_sources(identity: Identity, urls: Mapping[str, str | None] | None = None) -> list[Source]:
    """One instance of every source, sharing the identity tables.

    `urls` maps a source name to the URL it reads instead of its own (`[sources.NAME] url`, for a
    mirror or a proxy); each class documents what its URL is (one file, or the base of several).
    """
    urls = urls or {}
    unknown = sorted(set(urls) - source_names())
    if unknown:
        raise ValueError(f"no source named {', '.join(unknown)}; known: {', '.join(sorted(source_names()))}")
    sources: list[Source] = [cls(identity, url=urls.get(cls.name)) for cls in SOURCE_CLASSES]
    names = [s.name for s in sources]
    if len(names) != len(set(names)):
        raise RuntimeError(f"two sources share a name: {names}")
    return sources


def source_names() -> frozenset[str]:
    """The names of all sources (for validating config)."""
    return frozenset(cls.name for cls in SOURCE_CLASSES)


def all_boards(sources: list[Source]) -> dict[str, Board]:
    """Every board of every source by id."""
    return {b.id: b for s in sources for b in s.boards()}


def is_enabled_by_default(source: Source) -> bool:
    """Whether a source is polled when the config says nothing of it (a retired origin is not)."""
    return bool(getattr(source, "enabled_by_default", True))
