"""Model identity and origin: canonical model keys, aliases, organization -> country, groups.

Data files shipped beside this module (`sources/data/`):
- `org_countries.csv`: organization,countries,basis (countries = ISO alpha-2 codes joined by `;`,
  empty when unknown, e.g. an individual's Hugging Face account).
- `model_orgs.csv`: pattern,organization,open_weights (regex on the canonical key, first match
  wins) for sources whose rows carry no organization (Aider, LiveBench, arena-catalog JSON).
- `countries.csv`: name,code (country names as Epoch and others write them -> ISO alpha-2).
- `aliases.csv`: alias,key (renames across boards; users extend it in config).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

from sources.base import MIXED, Entry

_VENDOR_PREFIX = re.compile(r"^[^/\s]+/")
_NON_WORD = re.compile(r"[^a-z0-9.]+")
_ARCHITECT = re.compile(r"\s+\+\s+")


def canonical_key(name: str) -> str:
    """The cross-board key of a model name: case, punctuation and vendor prefixes folded.

    `Qwen/Qwen2-72B-Instruct` -> `qwen2-72b-instruct`; `GPT-4o-2024-05-13` keeps its date so dated
    releases stay distinct. Dots survive only between digits (`qwen2.5` vs `qwen25` differ).
    """
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = _VENDOR_PREFIX.sub("", text)
    text = _NON_WORD.sub("-", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", "-", text)
    text = re.sub(r"-{2,}", "-", text)
    return text.strip("-")


def split_components(name: str) -> list[str]:
    """The models of a composite entry: Aider's "DeepSeek R1 + claude-3-5-sonnet" -> two names."""
    parts = [p.strip() for p in _ARCHITECT.split(name) if p.strip()]
    return parts or [name]


def _org_key(org: str) -> str:
    return re.sub(r"\s+", " ", org.strip().strip('"')).casefold()


def _read_csv(name: str) -> list[dict[str, str]]:
    path = resources.files("sources").joinpath("data", name)
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of countries, organizations or licences (`open-weights`, `proprietary`)."""

    name: str
    countries: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()
    licence: str | None = None  # "open" or "proprietary"

    def contains(self, entry: Entry) -> bool:
        """True when the entry belongs to the group; a mixed entry belongs to no country group."""
        if self.licence is not None:
            if entry.open_weights is None:
                return False
            return entry.open_weights == (self.licence == "open")
        if self.organizations and entry.organization and not entry.mixed:
            if _org_key(entry.organization) in self.organizations:
                return True
        country = entry.country
        return country is not None and country in self.countries


EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
      "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")
EFTA = ("IS", "LI", "NO", "CH")


def default_groups() -> dict[str, Group]:
    """The groups every installation has; config can add more or redefine these."""
    europe = frozenset(EU + EFTA + ("GB",))
    return {
        "us": Group("us", countries=frozenset({"US"})),
        "china": Group("china", countries=frozenset({"CN"})),
        "europe": Group("europe", countries=europe),
        "west": Group("west", countries=europe | {"US", "CA", "AU", "NZ"}),
        "open-weights": Group("open-weights", licence="open"),
        "proprietary": Group("proprietary", licence="proprietary"),
    }


@dataclass
class Identity:
    """Resolves names to canonical keys and organizations to countries.

    Built once in the composition root from the shipped data files plus the user's config.
    """

    aliases: dict[str, str] = field(default_factory=dict)
    org_countries: dict[str, tuple[str, ...]] = field(default_factory=dict)
    model_orgs: list[tuple[re.Pattern[str], str, bool | None]] = field(default_factory=list)
    country_codes: dict[str, str] = field(default_factory=dict)
    org_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, extra_aliases: Mapping[str, str] | None = None) -> Identity:
        """The shipped tables, with the user's aliases on top."""
        ident = cls()
        for row in _read_csv("countries.csv"):
            ident.country_codes[_org_key(row["name"])] = row["code"].strip().upper()
        for row in _read_csv("org_countries.csv"):
            codes = tuple(c.strip().upper() for c in row["countries"].split(";") if c.strip())
            ident.org_countries[_org_key(row["organization"])] = codes
            ident.org_names.setdefault(_org_key(row["organization"]), row["organization"].strip())
        for row in _read_csv("model_orgs.csv"):
            ow = row.get("open_weights", "").strip().lower()
            flag = True if ow in ("1", "true", "yes", "open") else False if ow in (
                "0", "false", "no", "proprietary") else None
            ident.model_orgs.append((re.compile(row["pattern"]), row["organization"].strip(), flag))
        for row in _read_csv("aliases.csv"):
            ident.aliases[canonical_key(row["alias"])] = canonical_key(row["key"])
        for alias, key in (extra_aliases or {}).items():
            ident.aliases[canonical_key(alias)] = canonical_key(key)
        return ident

    def key(self, name: str) -> str:
        """The canonical key of a display name, after aliases."""
        k = canonical_key(name)
        return self.aliases.get(k, k)

    def organization_of(self, name: str) -> tuple[str | None, bool | None]:
        """(organization, open_weights) guessed from a model name by the shipped patterns."""
        k = self.key(name)
        for pattern, org, open_weights in self.model_orgs:
            if pattern.search(k):
                return org, open_weights
        return None, None

    def countries_of(self, organization: str | None) -> tuple[str, ...]:
        """ISO codes of an organization, () when unknown."""
        if not organization:
            return ()
        return self.org_countries.get(_org_key(organization), ())

    def country_code(self, name: str) -> str | None:
        """ISO alpha-2 for a country name ("United States of America" -> "US"), None if unknown."""
        text = name.strip()
        if len(text) == 2 and text.isalpha():
            return text.upper()
        return self.country_codes.get(_org_key(text))

    def entry(
        self,
        name: str,
        score: float,
        rank: int,
        *,
        organization: str | None = None,
        countries: Iterable[str] | None = None,
        open_weights: bool | None = None,
        component_models: Iterable[str] | None = None,
        ci_lower: float | None = None,
        ci_upper: float | None = None,
        votes: int | None = None,
    ) -> Entry:
        """Build an Entry, resolving key, organization, countries and whether it is mixed.

        `component_models` lists the models a system is built from (SWE-bench Model: tags); by
        default an Aider-style "A + B" name is split. Several model organizations, or organizations
        in several countries, make the entry `mixed`.
        """
        models = list(component_models) if component_models is not None else split_components(name)
        orgs: list[str] = []
        guessed_open: list[bool | None] = []
        for model in models:
            org, ow = self.organization_of(model)
            guessed_open.append(ow)
            if org and org not in orgs:
                orgs.append(org)
        if organization is None and len(orgs) == 1:
            organization = orgs[0]
        if open_weights is None and len(models) == 1:
            open_weights = guessed_open[0]
        all_countries: list[str] = list(countries) if countries is not None else []
        if countries is None:
            for org in ([organization] if organization else []) + orgs:
                for code in self.countries_of(org):
                    if code not in all_countries:
                        all_countries.append(code)
        model_orgs = {_org_key(o) for o in orgs}
        mixed = len(model_orgs) > 1 or len(set(all_countries)) > 1
        if organization is None and len(model_orgs) > 1:
            organization = MIXED
        if organization and organization != MIXED:
            organization = self.org_names.get(_org_key(organization), organization.strip())
        return Entry(
            name=name.strip(), model_key=self.key(name), score=score, rank=rank,
            organization=organization, countries=tuple(all_countries), mixed=mixed,
            open_weights=open_weights, ci_lower=ci_lower, ci_upper=ci_upper, votes=votes,
            components=tuple(models) if len(models) > 1 or component_models is not None else (),
        )
