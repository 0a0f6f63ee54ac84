"""Model identity and origin: canonical model keys, aliases, organization -> country, groups.

Data files shipped beside this module (`sources/data/`); a row whose first cell starts with `#` is
a comment:
- `org_countries.csv`: organization,countries,basis,same_as (countries = ISO alpha-2 codes joined
  by `;`, empty when unknown, e.g. an individual's Hugging Face account; `basis` says where the
  mapping comes from; `same_as` names the organization this spelling belongs to, e.g.
  `deepseek-ai` -> `DeepSeek`, empty for the main spelling).
- `model_orgs.csv`: pattern,organization,open_weights (regex searched in the canonical key, first
  match wins; open_weights `open`, `proprietary` or empty) for sources whose rows carry no
  organization (Aider, LiveBench, arena-catalog JSON, SWE-bench `Model:` tags).
- `countries.csv`: name,code (country names as Epoch and others write them -> ISO alpha-2; an
  empty code marks a name that is no country, e.g. `Multinational`).
- `aliases.csv`: alias,key (renames across boards; users extend it in config).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from leaderwatch.sources.base import MIXED, Entry

logger = logging.getLogger(__name__)

# Namespaces that name an API provider, a router or the model's own maker: `openrouter/`,
# `gemini/`, `Qwen/`, `meta-llama/`. Stripping them makes `Qwen/Qwen2-72B-Instruct` and LMArena's
# `qwen2-72b-instruct` one key. Any other namespace (a Hugging Face user re-uploading or
# fine-tuning a model) stays in the key: `allknowingroger/Yi-1.5-34B` is not 01.AI's `Yi-1.5-34B`.
VENDOR_NAMESPACES = frozenset("""
01-ai agentica-org ai21labs alibaba allenai amazon anthropic apple arcee-ai azure azure_ai baai
baichuan-inc baidu bedrock bigcode bytedance bytedance-seed cerebras chutes cohere cohereforai
coherelabs dashscope databricks deepinfra deepseek deepseek-ai facebook fireworks fireworks_ai gemini
google groq hf huggingface huggingfaceh4 huggingfacetb hyperbolic ibm ibm-granite inclusionai
internlm kwaipilot liquidai llm360 lm_studio lmsys meituan-longcat meta meta-llama microsoft minimax
minimaxai mistral mistral-community mistralai moonshot moonshotai nebius nousresearch novita nvidia
ollama ollama_chat openai openai-community openbmb openrouter perplexity perplexity-ai qwen replicate
sambanova servicenow-ai snowflake stabilityai stepfun-ai tencent text-completion-openai thudm tiiuae
together together_ai togethercomputer upstage vertex vertex_ai x-ai xai xiaomimimo z-ai zai-org zhipuai
""".split())

_HF_URL = re.compile(r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/")
_NAMESPACE = re.compile(r"^([a-z0-9][a-z0-9._-]*)/(?=\S)")
_NON_WORD = re.compile(r"[^a-z0-9.]+")
_LONE_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)(20\d\d)-(0[1-9]|1[0-2])-([0-3]\d)(?!\d)")
# A dot between digits is a version separator (`claude-3.5` = `claude-3-5`) unless it is part of
# a parameter count (`pygmalion-2.7b` is a 2.7B model, `pygmalion-2-7b` another model).
_VERSION_DOT = re.compile(r"(?<=\d)\.(?!\d+[bmk](?:-|$))(?=\d)")
_META_LLAMA = re.compile(r"^meta-llama-")
# Anthropic put the family first from Claude 4 on (`claude-sonnet-4`); some boards still write
# `claude-4-sonnet`. Claude 3.x keys stay version-first, as Anthropic named them.
_CLAUDE_ORDER = re.compile(r"^claude-([4-9](?:-\d)?)-(opus|sonnet|haiku)(?=-|$)")
_DASHES = re.compile(r"-{2,}")
_ARCHITECT = re.compile(r"\s+\+\s+")


def canonical_key(name: str) -> str:
    """The cross-board key of a model name: case, punctuation and vendor prefixes folded.

    `Qwen/Qwen2-72B-Instruct` -> `qwen2-72b-instruct`; `Claude 3.5 Sonnet (2024-10-22)` and
    `claude-3-5-sonnet-20241022` -> `claude-3-5-sonnet-20241022`; `Command R+` -> `command-r-plus`.
    Dated releases stay distinct (`gpt-4o-20240513` vs `gpt-4o-20240806`).
    """
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = _HF_URL.sub("", text)
    while (m := _NAMESPACE.match(text)) and m.group(1) in VENDOR_NAMESPACES:
        text = text[m.end():]
    namespace = ""
    if m := _NAMESPACE.match(text):
        namespace, text = _NON_WORD.sub("-", m.group(1)).strip("-"), text[m.end():]
    text = text.replace("+", "-plus")
    text = _NON_WORD.sub("-", text)
    text = _LONE_DOT.sub("-", text)
    text = _ISO_DATE.sub(r"\1\2\3", text)
    text = _VERSION_DOT.sub("-", text)
    text = _DASHES.sub("-", text).strip("-")
    text = _META_LLAMA.sub("llama-", text)
    text = _CLAUDE_ORDER.sub(r"claude-\2-\1", text)
    return f"{namespace}/{text}" if namespace else text


def split_components(name: str) -> list[str]:
    """The models of a composite entry: Aider's "DeepSeek R1 + claude-3-5-sonnet" -> two names."""
    parts = [p.strip() for p in _ARCHITECT.split(name) if p.strip()]
    return parts or [name]


def _org_key(org: str) -> str:
    return re.sub(r"\s+", " ", org.strip().strip('"')).casefold()


def _read_csv(name: str) -> list[dict[str, str]]:
    path = resources.files("leaderwatch.sources").joinpath("data", name)
    if not path.is_file():
        logger.warning("identity table %s is missing; its lookups will find nothing", name)
        return []
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return [row for row in rows
            if not (next(iter(row.values()), None) or "").lstrip().startswith("#")]


def _parse_licence(value: str) -> bool | None:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "open", "open-weights", "open weights"):
        return True
    if text in ("0", "false", "no", "proprietary", "closed"):
        return False
    return None


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of countries and/or organizations, optionally narrowed to one licence.

    An entry belongs when it is credited to one of the countries or made by one of the
    organizations (either, when both are given) and, if `licence` is set ("open" or
    "proprietary"), has that licence. A group with only a licence holds every entry with it.
    """

    name: str
    countries: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()
    licence: str | None = None  # "open" or "proprietary"

    def contains(self, entry: Entry) -> bool:
        """True when the entry belongs to the group; a mixed entry belongs to no country group."""
        if self.licence is not None:
            if entry.open_weights is None or entry.open_weights != (self.licence == "open"):
                return False
            if not self.countries and not self.organizations:
                return True
        if self.organizations and entry.organization and not entry.mixed:
            if _org_key(entry.organization) in self.organizations:
                return True
        country = entry.country
        return country is not None and country in self.countries


EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
      "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")
EFTA = ("IS", "LI", "NO", "CH")
# Hong Kong and Macao have their own ISO codes but are part of China (SenseTime, CUHK).
CHINA = ("CN", "HK", "MO")


def default_groups() -> dict[str, Group]:
    """The groups every installation has; config can add more or redefine these."""
    europe = frozenset(EU + EFTA + ("GB",))
    return {
        "us": Group("us", countries=frozenset({"US"})),
        "china": Group("china", countries=frozenset(CHINA)),
        "europe": Group("europe", countries=europe),
        "west": Group("west", countries=europe | {"US", "CA", "AU", "NZ"}),
        "open-weights": Group("open-weights", licence="open"),
        "proprietary": Group("proprietary", licence="proprietary"),
    }


_GROUP_KEYS = ("countries", "organizations", "licence")


def _string_list(group: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"group `{group}`: `{key}` must be a list of names, got {value!r}")
    return [v.strip() for v in value]


def load_groups(config: Mapping[str, Mapping[str, Any]], identity: Identity | None = None
                ) -> dict[str, Group]:
    """The default groups, with the config's `[groups.NAME]` tables added or replacing them.

    Each table has `countries` (ISO alpha-2 codes, or country names when `identity` is given),
    `organizations` (names; with `identity`, every spelling of the same organization counts) and
    `licence` ("open" or "proprietary"). Raises ValueError naming the group and the bad key.
    """
    groups = default_groups()
    for name, table in config.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"group `{name}`: expected a table with {', '.join(_GROUP_KEYS)}")
        unknown = [k for k in table if k not in _GROUP_KEYS]
        if unknown:
            raise ValueError(f"group `{name}`: unknown key `{unknown[0]}` "
                             f"(expected {', '.join(_GROUP_KEYS)})")
        if not any(k in table for k in _GROUP_KEYS):
            raise ValueError(f"group `{name}`: empty; give countries, organizations or licence")
        countries: set[str] = set()
        for country in _string_list(name, "countries", table.get("countries", [])):
            code = identity.country_code(country) if identity else (
                country.upper() if len(country) == 2 and country.isalpha() else None)
            if code is None:
                raise ValueError(f"group `{name}`: `countries` has `{country}`, which is no ISO "
                                 "3166 alpha-2 code (e.g. US, CN, FR)")
            countries.add(code)
        organizations: set[str] = set()
        for org in _string_list(name, "organizations", table.get("organizations", [])):
            organizations.update(identity.spellings_of(org) if identity else {_org_key(org)})
        licence: str | None = None
        if "licence" in table:
            values = _string_list(name, "licence", table["licence"])
            flag = _parse_licence(values[0]) if len(values) == 1 else None
            if flag is None:
                raise ValueError(f"group `{name}`: `licence` must be \"open\" or \"proprietary\", "
                                 f"got {table['licence']!r}")
            licence = "open" if flag else "proprietary"
        groups[name] = Group(name, frozenset(countries), frozenset(organizations), licence)
    return groups


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
    # spelling key -> the organization's main name ("deepseek-ai" -> "DeepSeek").
    org_same_as: dict[str, str] = field(default_factory=dict)
    # Importing all history resolves the same few thousand names again and again.
    _key_cache: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _org_cache: dict[str, tuple[str | None, bool | None]] = field(
        default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, extra_aliases: Mapping[str, str] | None = None) -> Identity:
        """The shipped tables, with the user's aliases on top."""
        ident = cls()
        for row in _read_csv("countries.csv"):
            # An empty code marks a name that is no country ("Multinational"): it resolves to None.
            if row["code"].strip():
                ident.country_codes[_org_key(row["name"])] = row["code"].strip().upper()
        for row in _read_csv("org_countries.csv"):
            codes = tuple(c.strip().upper() for c in row["countries"].split(";") if c.strip())
            key = _org_key(row["organization"])
            ident.org_countries[key] = codes
            ident.org_names.setdefault(key, row["organization"].strip())
            same_as = (row.get("same_as") or "").strip()
            ident.org_same_as[key] = same_as or row["organization"].strip()
        for row in _read_csv("model_orgs.csv"):
            ident.model_orgs.append((re.compile(row["pattern"]), row["organization"].strip(),
                                     _parse_licence(row.get("open_weights") or "")))
        for row in _read_csv("aliases.csv"):
            ident.aliases[canonical_key(row["alias"])] = canonical_key(row["key"])
        for alias, key in (extra_aliases or {}).items():
            ident.aliases[canonical_key(alias)] = canonical_key(key)
        return ident

    def key(self, name: str) -> str:
        """The canonical key of a display name, after aliases."""
        cached = self._key_cache.get(name)
        if cached is None:
            k = canonical_key(name)
            cached = self._key_cache[name] = self.aliases.get(k, k)
        return cached

    def organization_of(self, name: str) -> tuple[str | None, bool | None]:
        """(organization, open_weights) guessed from a model name by the shipped patterns."""
        k = self.key(name)
        cached = self._org_cache.get(k)
        if cached is None:
            cached = (None, None)
            for pattern, org, open_weights in self.model_orgs:
                if pattern.search(k):
                    cached = (org, open_weights)
                    break
            self._org_cache[k] = cached
        return cached

    def countries_of(self, organization: str | None) -> tuple[str, ...]:
        """ISO codes of an organization, () when unknown."""
        if not organization:
            return ()
        return self.org_countries.get(_org_key(organization), ())

    def is_known_organization(self, organization: str) -> bool:
        """True when the organization has a row in the shipped table (even one with no country)."""
        return _org_key(organization) in self.org_countries

    def canonical_organization(self, organization: str) -> str:
        """The main name of an organization spelled any known way ("deepseek-ai" -> "DeepSeek")."""
        return self.org_same_as.get(_org_key(organization), organization.strip())

    def spellings_of(self, organization: str) -> set[str]:
        """Case-folded spellings of the organization: itself and every name that is the same as it."""
        main = _org_key(self.canonical_organization(organization))
        found = {_org_key(organization), main}
        found.update(k for k, same in self.org_same_as.items() if _org_key(same) == main)
        return found

    def country_code(self, name: str) -> str | None:
        """ISO alpha-2 for a country name ("United States of America" -> "US"), None if unknown."""
        text = name.strip()
        # The table first: "UK" is a name there (-> GB), not an ISO code.
        code = self.country_codes.get(_org_key(text))
        if code is None and len(text) == 2 and text.isalpha():
            return text.upper()
        return code

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
        model_orgs = {_org_key(self.canonical_organization(o)) for o in orgs}
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
