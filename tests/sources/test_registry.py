"""The registry: one instance of every source, each at its configured URL; which are polled by default."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from leaderwatch.bot.app import build_app
from leaderwatch.bot.settings import ConfigError, Settings, SourceSettings, load_settings
from leaderwatch.sources.base import Board
from leaderwatch.sources.identity import Identity
from leaderwatch.sources.registry import all_sources, is_enabled_by_default, source_names
from leaderwatch.storage import snapshots
from leaderwatch.storage.db import open_db

MIRRORS = {
    "aider": "https://mirror.example/aider/_data",
    "epoch": "https://mirror.example/epoch/benchmark_data.zip",
    "livebench": "https://mirror.example/livebench/",
    "opencompass": "http://opencompass.openxlab.space/assets/OpenVLM.json",
    "openllm": "https://mirror.example/hf/rows",
    "swebench": "https://mirror.example/swe/leaderboards.json",
}


def test_each_source_takes_its_url_by_keyword(identity: Identity) -> None:
    defaults = {s.name: s for s in all_sources(identity)}
    configured = {s.name: s for s in all_sources(identity, urls=MIRRORS)}
    assert set(configured) == source_names()
    for name, url in MIRRORS.items():
        source = configured[name]
        assert source.url.rstrip("/") == url.rstrip("/"), name
        assert defaults[name].url != source.url, name
    # the probe doctor checks follows the configured URL (LiveBench's first request is its release index)
    assert configured["aider"].probe_url == "https://mirror.example/aider/_data/polyglot_leaderboard.yml"  # type: ignore[attr-defined]
    assert configured["epoch"].probe_url == MIRRORS["epoch"]  # type: ignore[attr-defined]
    assert configured["opencompass"].probe_url == MIRRORS["opencompass"]  # type: ignore[attr-defined]
    assert defaults["opencompass"].probe_url == "https://cdn.opencompass.org.cn/assets/OpenVLM.json"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no source named lmsys"):
        all_sources(identity, urls={"lmsys": "https://example.org/"})


def test_only_the_retired_open_llm_leaderboard_is_off_by_default(identity: Identity) -> None:
    off = {s.name for s in all_sources(identity) if not is_enabled_by_default(s)}
    assert off == {"openllm"}


async def test_the_app_wires_urls_and_polls_openllm_only_when_enabled(tmp_path: Path,
                                                                      identity: Identity) -> None:
    def nothing(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected: {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(nothing)) as client:
        settings = Settings(db_path=str(tmp_path / "a.db"),
                            sources={"swebench": SourceSettings(url=MIRRORS["swebench"])})
        app = build_app(settings, client=client)
        try:
            swe = next(s for s in app.sources if s.name == "swebench")
            assert swe.url == MIRRORS["swebench"]
            assert "openllm" not in {s.name for s in app.enabled_sources()}
            assert "openllm" in {s.name for s in app.sources}  # its boards and history stay
        finally:
            app.db.close()
        settings = Settings(db_path=str(tmp_path / "b.db"), sources={"openllm": SourceSettings(enabled=True)})
        app = build_app(settings, client=client)
        try:
            assert "openllm" in {s.name for s in app.enabled_sources()}
        finally:
            app.db.close()


def test_url_setting(tmp_path: Path) -> None:
    config = tmp_path / "leaderwatch.toml"
    config.write_text('[sources.swebench]\nurl = " https://mirror.example/swe/leaderboards.json "\n'
                      "[sources.openllm]\nenabled = true\n", encoding="utf-8")
    settings = load_settings({"LEADERWATCH_CONFIG": str(config)}, known_sources=source_names())
    assert settings.sources["swebench"] == SourceSettings(True, None,
                                                          "https://mirror.example/swe/leaderboards.json")
    assert settings.sources["openllm"] == SourceSettings(True, None, None)
    for bad, said in (('url = 42', "expected a quoted http(s) URL"),
                      ('url = "ftp://mirror.example/x.zip"', "is not an http(s) URL"),
                      ('url = "https://"', "is not an http(s) URL")):
        config.write_text(f"[sources.epoch]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"config \[sources\.epoch\] url: .*" + re.escape(said)):
            load_settings({"LEADERWATCH_CONFIG": str(config)}, known_sources=source_names())


async def test_a_stored_board_is_marked_archived_at_start(tmp_path: Path, identity: Identity) -> None:
    path = str(tmp_path / "old.db")
    db = open_db(path)
    old = Board("openllm/v2", "Open LLM Leaderboard v2", "Average", url="https://huggingface.co/")
    snapshots.save_board(db, old)  # as a database from before the retirement holds it
    db.close()
    async with httpx.AsyncClient() as client:
        app = build_app(Settings(db_path=path), client=client)
        try:
            stored = snapshots.board(app.db, "openllm/v2")
            assert stored is not None and stored.archived
            assert snapshots.board(app.db, "openllm/v1") is None  # no history: not added
        finally:
            app.db.close()
