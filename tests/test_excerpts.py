"""The excerpts in tests/data/recordings: small, each listed in the README, each cut from its recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = (".csv", ".yml", ".json")


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in DATA)


def test_every_excerpt_is_small_and_listed_in_the_readme(excerpts: Path) -> None:
    files = data_files(excerpts)
    assert len(files) > 100
    readme = (excerpts / "README.md").read_text(encoding="utf-8")
    for path in files:
        assert path.stat().st_size < 50_000, path
        rel = path.relative_to(excerpts).as_posix()
        # Listed in its folder's section (the daily scrape's files as DAY/KIND.json in one section).
        scrape = "lmarena/arena_ai_daily_scrape"
        section = scrape if rel.startswith(f"{scrape}/") else rel.rsplit("/", 1)[0]
        listed = rel[len(section) + 1:]
        assert f"### `{section}/`" in readme and f"| `{listed}` (" in readme, rel
    assert sum(p.stat().st_size for p in excerpts.rglob("*") if p.is_file()) <= 1_000_000


def is_cut_from(excerpt: object, original: object, where: str = "") -> bool:
    """Objects keep some of their keys with the original values, lists some of their items in order;
    the daily scrape's `meta.model_count` says how many models are kept."""
    if isinstance(excerpt, dict) and isinstance(original, dict):
        return all(key in original and (f"{where}/{key}" == "/meta/model_count"
                                        or is_cut_from(value, original[key], f"{where}/{key}"))
                   for key, value in excerpt.items())
    if isinstance(excerpt, list) and isinstance(original, list):
        rest = iter(original)
        return all(any(is_cut_from(item, candidate, where) for candidate in rest) for item in excerpt)
    return excerpt == original


@pytest.mark.whole_history
def test_every_excerpt_is_cut_from_its_recording(excerpts: Path, recordings: Path) -> None:
    """Rows (CSV and YAML lines, JSON items) are only left out, never changed or reordered."""
    for path in data_files(excerpts):
        original = recordings / path.relative_to(excerpts)
        if path.suffix == ".json":
            cut, whole = json.loads(path.read_bytes()), json.loads(original.read_bytes())
            assert is_cut_from(cut, whole), path
            if isinstance(cut, dict) and "meta" in cut:
                assert cut["meta"]["model_count"] == len(cut["models"]), path
        else:
            lines = iter(original.read_bytes().splitlines(keepends=True))
            kept = path.read_bytes().splitlines(keepends=True)
            assert all(any(line == o for o in lines) for line in kept), path
