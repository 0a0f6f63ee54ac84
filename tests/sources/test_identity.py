"""Identity: canonical keys, aliases, organization -> country, mixed entries, groups, data files."""

from __future__ import annotations

import csv
import glob
import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from leaderwatch.sources.base import MIXED
from leaderwatch.sources.identity import (
    Group,
    Identity,
    canonical_key,
    default_groups,
    load_groups,
    split_components,
)

DATA = Path(str(resources.files("leaderwatch.sources").joinpath("data")))


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if not next(iter(r.values())).startswith("#")]


# --- canonical keys -------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), [
    ("Qwen/Qwen2-72B-Instruct", "qwen2-72b-instruct"),
    ("DeepSeek-R1", "deepseek-r1"),  # LMArena CSV vs arena-catalog key
    ("Claude 3.5 Sonnet (20241022)", "claude-3-5-sonnet-20241022"),
    ("claude-3.5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
    ("ChatGPT-4o-latest (2024-08-08)", "chatgpt-4o-latest-20240808"),  # LMArena display vs key
    ("Command R+ (08-2024)", "command-r-plus-08-2024"),
    ("Meta-Llama-3.1-405B-Instruct-fp8", "llama-3.1-405b-instruct-fp8"),
    ("meta-llama/Meta-Llama-3-70B-Instruct", "llama-3-70b-instruct"),
    ("InternLM2.5-20B-chat", "internlm2_5-20b-chat"),
    ("claude-4-sonnet-20250514", "claude-sonnet-4-20250514"),  # SWE-bench tag vs Anthropic id
    ("claude-4.1-opus", "claude-opus-4-1"),
    ("openrouter/deepseek/deepseek-r1", "deepseek-r1"),  # Aider: router + maker prefix
    ("https://huggingface.co/Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3-coder-30b-a3b-instruct"),
    ("Amazon Nova Pro 1.0", "amazon-nova-pro-v1.0"),  # through the shipped aliases
])
def test_same_model_same_key(identity, a, b):
    assert identity.key(a) == identity.key(b)


@pytest.mark.parametrize(("a", "b"), [
    ("GPT-4o-2024-05-13", "gpt-4o-2024-08-06"),  # dated releases stay apart
    ("Command R+", "Command R"),  # the plus is not punctuation
    ("PygmalionAI/pygmalion-2.7b", "PygmalionAI/pygmalion-2-7b"),  # 2.7B params vs Pygmalion 2 7B
    ("Qwen2.5-72B-Instruct", "Qwen2-72B-Instruct"),
    ("allknowingroger/Yi-1.5-34B", "01-ai/Yi-1.5-34B"),  # a user's upload is not the maker's
    ("unsloth/Phi-3-mini-4k-instruct", "microsoft/Phi-3-mini-4k-instruct"),
    ("Claude 3.5 Sonnet", "claude-3-5-sonnet-20241022"),  # undated name is ambiguous: no alias
    ("gpt-4.1", "gpt-4-1106-preview"),
])
def test_different_models_different_keys(identity, a, b):
    assert identity.key(a) != identity.key(b)


@pytest.mark.parametrize(("name", "key"), [
    ("Qwen/Qwen2-72B-Instruct", "qwen2-72b-instruct"),
    ("GPT-4o-2024-05-13", "gpt-4o-20240513"),
    ("Claude 3.5 Sonnet (20241022)", "claude-3-5-sonnet-20241022"),
    ("Qwen2.5-0.5B-Instruct", "qwen2-5-0.5b-instruct"),  # the size keeps its dot
    ("MaziyarPanahi/calme-3.2-instruct-78b", "maziyarpanahi/calme-3-2-instruct-78b"),
    ("ollama/granite3-dense:8b", "granite3-dense-8b"),
    ("gpt-5 (high)", "gpt-5-high"),
    ("  Grok-3-Preview-02-24 ", "grok-3-preview-02-24"),
])
def test_canonical_key_values(name, key):
    assert canonical_key(name) == key


def test_split_components():
    assert split_components("DeepSeek R1 + claude-3-5-sonnet-20241022") == [
        "DeepSeek R1", "claude-3-5-sonnet-20241022"]
    assert split_components("Command R+") == ["Command R+"]
    assert split_components("gpt-4o") == ["gpt-4o"]


# --- aliases --------------------------------------------------------------------------------

def test_shipped_aliases_point_at_real_keys(identity):
    assert identity.key("Claude 3 Opus") == "claude-3-opus-20240229"
    assert identity.key("Gemini-1.5-Pro-001") == "gemini-1-5-pro-api-0514"
    assert identity.key("Luma Photon") == "photon"
    assert identity.key("llama-3.2-vision-90b-instruct") == "llama-3-2-90b-vision-instruct"


def test_user_aliases_extend_and_override():
    ident = Identity.load({"My Model v2": "gpt-4o-2024-08-06", "Claude 3 Opus": "claude-3-opus"})
    assert ident.key("my-model-v2") == "gpt-4o-20240806"
    assert ident.key("Claude 3 Opus") == "claude-3-opus"


def test_aliases_do_not_chain_or_loop():
    table = rows("aliases.csv")
    assert len(table) >= 30
    aliases = {canonical_key(r["alias"]): canonical_key(r["key"]) for r in table}
    for alias, key in aliases.items():
        assert alias != key, alias
        assert key not in aliases, f"{alias} -> {key} -> {aliases[key]}"


# --- organizations and countries ------------------------------------------------------------

@pytest.mark.parametrize(("org", "countries"), [
    ("DeepSeek", ("CN",)), ("DeepSeek AI", ("CN",)), ("deepseek-ai", ("CN",)), ("DeepSeek-AI", ("CN",)),
    ("Alibaba", ("CN",)), ("Qwen", ("CN",)), ("Mistral AI", ("FR",)), ("mistralai", ("FR",)),
    ("OpenAI", ("US",)), ("01 AI", ("CN",)), ("01.AI", ("CN",)), ("Cohere", ("CA",)),
    ("CohereForAI", ("CA",)), ("AI21 Labs", ("IL",)), ("Z.ai", ("CN",)), ("Zhipu", ("CN",)),
    ("Moonshot", ("CN",)), ("xAI", ("US",)), ("Google DeepMind", ("US",)), ("Meta", ("US",)),
    ("meta-llama", ("US",)), ("Upstage AI", ("KR",)), ("TII", ("AE",)), ("Black Forest Labs", ("DE",)),
    ("Stability AI", ("GB",)), ("HuggingFace", ("US",)), ("Atlassian", ("AU",)), ("SenseTime", ("HK",)),
    ("  nvidia ", ("US",)),
])
def test_org_countries(identity, org, countries):
    assert identity.countries_of(org) == countries


def test_individuals_and_unknown_orgs_have_no_country(identity):
    assert "maziyarpanahi" in identity.org_countries
    assert identity.countries_of("MaziyarPanahi") == ()
    assert identity.countries_of("Stealth") == ()
    assert identity.countries_of("No Such Lab") == ()
    assert identity.countries_of(None) == ()


def test_canonical_organization_and_spellings(identity):
    assert identity.canonical_organization("deepseek-ai") == "DeepSeek"
    assert identity.canonical_organization("Qwen") == "Alibaba"
    assert identity.canonical_organization("Somebody") == "Somebody"
    assert {"deepseek", "deepseek ai", "deepseek-ai"} <= identity.spellings_of("DeepSeek-AI")


@pytest.mark.parametrize(("name", "org", "open_weights"), [
    ("gpt-4o-2024-05-13", "OpenAI", False),
    ("o3-mini (high)", "OpenAI", False),
    ("gpt-oss-120b", "OpenAI", True),
    ("claude-3-5-sonnet-20241022", "Anthropic", False),
    ("gemma-2-27b-it", "Google", True),
    ("gemini-2.5-pro", "Google", False),
    ("DeepSeek R1", "DeepSeek", True),
    ("qwen2.5-72b-instruct", "Alibaba", True),
    ("qwen2.5-max", "Alibaba", False),
    ("Qwen3-Max-Preview", "Alibaba", False),
    ("llama-3.1-405b-instruct", "Meta", True),
    ("llama-3.1-nemotron-70b-instruct", "NVIDIA", True),
    ("mistral-large-2402", "Mistral AI", False),
    ("mistral-large-2407", "Mistral AI", True),
    ("mistral-small", "Mistral AI", None),
    ("codestral-25.01", "Mistral AI", False),
    ("grok-4-0709", "xAI", False),
    ("grok-3-preview-02-24", "xAI", None),
    ("command-r-plus-08-2024", "Cohere", True),
    ("yi-lightning", "01 AI", False),
    ("yi-1.5-34b-chat", "01 AI", True),
    ("glm-4.5", "Zhipu AI", True),
    ("kimi-k2-0905-preview", "Moonshot AI", True),
    ("minimax-m1", "MiniMax", True),
    ("phi-4", "Microsoft", True),
    ("amazon-nova-pro-v1.0", "Amazon", False),
    ("gpt4all-13b-snoozy", "Nomic AI", True),
    ("Doubao-Seed-Code", "ByteDance", False),
])
def test_organization_of_model_names(identity, name, org, open_weights):
    assert identity.organization_of(name) == (org, open_weights)


def test_unknown_model_has_no_organization(identity):
    assert identity.organization_of("totally-new-model-9000") == (None, None)
    # A user's fine-tune named after Qwen is not credited to Alibaba.
    assert identity.organization_of("huihui-ai/Qwen2.5-72B-Instruct-abliterated") == (None, None)


@pytest.mark.parametrize(("name", "code"), [
    ("United States of America", "US"),
    ("United Kingdom of Great Britain and Northern Ireland", "GB"),
    ("Korea (Republic of)", "KR"),
    ("taiwan", "TW"),
    ("Iran (Islamic Republic of)", "IR"),
    ("Hong Kong", "HK"),
    ("UK", "GB"),
    ("fr", "FR"),
    ("Multinational", None),
    ("Atlantis", None),
])
def test_country_code(identity, name, code):
    assert identity.country_code(name) == code


# --- entries: organization, countries, mixed ------------------------------------------------

def test_composite_of_two_countries_is_mixed(identity):
    e = identity.entry("DeepSeek R1 + claude-3-5-sonnet-20241022", 64.0, 1)
    assert e.mixed and e.organization == MIXED
    assert set(e.countries) == {"CN", "US"}
    assert e.country is None
    assert e.components == ("DeepSeek R1", "claude-3-5-sonnet-20241022")
    assert e.open_weights is None


def test_same_org_composite_is_not_mixed(identity):
    e = identity.entry("o1 + gpt-4o", 61.2, 2)
    assert not e.mixed
    assert (e.organization, e.countries, e.country) == ("OpenAI", ("US",), "US")


def test_explicit_multi_country_list_is_mixed(identity):
    e = identity.entry("BLOOM-176B", 50.0, 3, organization="BigScience", countries=["FR", "US"])
    assert e.mixed and e.country is None and e.countries == ("FR", "US")


def test_source_organization_is_kept_and_countries_resolved(identity):
    e = identity.entry("DeepSeek-R1", 1357, 3, organization="DeepSeek AI")
    assert (e.organization, e.countries, e.mixed, e.model_key) == ("DeepSeek AI", ("CN",), False,
                                                                    "deepseek-r1")
    assert e.open_weights is True


def test_agent_vendor_with_models_from_two_labs_is_mixed(identity):
    e = identity.entry("Atlassian Rovo Dev", 76.8, 3, organization="Atlassian",
                       component_models=["claude-sonnet-4-20250514", "gpt-5"])
    assert e.mixed and e.organization == "Atlassian" and set(e.countries) == {"AU", "US"}


def test_mixed_entry_belongs_to_no_country_group(identity):
    groups = default_groups()
    e = identity.entry("DeepSeek R1 + claude-3-5-sonnet-20241022", 64.0, 1)
    assert not any(groups[g].contains(e) for g in ("us", "china", "europe", "west"))
    orgs = load_groups({"labs": {"organizations": ["DeepSeek", "Anthropic"]}}, identity)
    assert not orgs["labs"].contains(e)


# --- groups ---------------------------------------------------------------------------------

def test_default_groups_by_country(identity):
    groups = default_groups()
    assert set(groups) == {"us", "china", "europe", "west", "open-weights", "proprietary"}
    mistral = identity.entry("mistral-large-2407", 1.0, 1)
    deepseek = identity.entry("deepseek-v3", 1.0, 1)
    cohere = identity.entry("command-r", 1.0, 1)
    sensetime = identity.entry("SenseNova", 1.0, 1, organization="SenseTime")
    assert groups["europe"].contains(mistral) and groups["west"].contains(mistral)
    assert not groups["us"].contains(mistral)
    assert groups["china"].contains(deepseek) and not groups["west"].contains(deepseek)
    assert groups["west"].contains(cohere) and not groups["europe"].contains(cohere)
    assert groups["china"].contains(sensetime)


def test_groups_by_licence(identity):
    groups = default_groups()
    open_model = identity.entry("llama-3.1-405b-instruct", 1.0, 1)
    closed = identity.entry("gpt-4o-2024-08-06", 1.0, 1)
    unknown = identity.entry("grok-3-preview-02-24", 1.0, 1)
    assert groups["open-weights"].contains(open_model) and not groups["proprietary"].contains(open_model)
    assert groups["proprietary"].contains(closed) and not groups["open-weights"].contains(closed)
    assert not groups["open-weights"].contains(unknown) and not groups["proprietary"].contains(unknown)


def test_config_defines_and_redefines_groups(identity):
    groups = load_groups({
        "nordics": {"countries": ["SE", "NO", "DK", "FI", "IS"]},
        "us": {"countries": ["US", "CA"]},
        "chinese-open": {"countries": ["CN"], "licence": "open"},
        "deepseek": {"organizations": ["DeepSeek"]},
        "uk-by-name": {"countries": ["United Kingdom"]},
    }, identity)
    assert groups["us"].countries == frozenset({"US", "CA"})
    assert groups["europe"] == default_groups()["europe"]
    assert groups["uk-by-name"].countries == frozenset({"GB"})
    assert groups["chinese-open"].contains(identity.entry("qwen2.5-72b-instruct", 1.0, 1))
    assert not groups["chinese-open"].contains(identity.entry("qwen2.5-max", 1.0, 1))
    oll_row = identity.entry("deepseek-ai/DeepSeek-V2-Chat", 1.0, 1, organization="deepseek-ai")
    assert groups["deepseek"].contains(oll_row)
    assert not groups["deepseek"].contains(identity.entry("qwen2.5-72b-instruct", 1.0, 1))


def test_config_groups_without_identity_take_iso_codes():
    groups = load_groups({"g": {"countries": ["us"], "organizations": "OpenAI"}})
    assert groups["g"] == Group("g", countries=frozenset({"US"}), organizations=frozenset({"openai"}))


@pytest.mark.parametrize(("config", "message"), [
    ({"g": {"countrys": ["US"]}}, "group `g`: unknown key `countrys`"),
    ({"g": {}}, "group `g`: empty"),
    ({"g": "US"}, "group `g`: expected a table"),
    ({"g": {"countries": [1, 2]}}, "group `g`: `countries` must be a list of names"),
    ({"g": {"countries": ["Narnia"]}}, "group `g`: `countries` has `Narnia`"),
    ({"g": {"organizations": [""]}}, "group `g`: `organizations` must be a list of names"),
    ({"g": {"licence": "free"}}, "group `g`: `licence` must be \"open\" or \"proprietary\""),
    ({"g": {"licence": ["open", "proprietary"]}}, "group `g`: `licence` must be"),
])
def test_bad_group_config(identity, config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_groups(config, identity)


# --- data files -----------------------------------------------------------------------------

def test_country_table_is_sane():
    table = rows("countries.csv")
    names = [r["name"].casefold() for r in table]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[A-Z]{2}", r["code"]) for r in table if r["code"])


def test_org_table_is_sane():
    codes = {r["code"] for r in rows("countries.csv") if r["code"]}
    table = rows("org_countries.csv")
    assert len(table) > 250
    keys = [re.sub(r"\s+", " ", r["organization"].strip()).casefold() for r in table]
    assert len(keys) == len(set(keys)), "duplicate organization rows under case folding"
    mains = {k for k, r in zip(keys, table, strict=True) if not r["same_as"]}
    for r in table:
        for code in filter(None, r["countries"].split(";")):
            assert code in codes, f"{r['organization']}: {code}"
        assert r["basis"].strip(), r["organization"]
        if r["same_as"]:
            assert r["same_as"].casefold() in mains, r["organization"]


def test_model_org_table_is_sane(identity):
    table = rows("model_orgs.csv")
    assert len(table) > 100
    for r in table:
        re.compile(r["pattern"])
        assert r["open_weights"] in ("", "open", "proprietary"), r
        assert identity.org_countries.get(r["organization"].casefold()) is not None, r["organization"]


# --- coverage of the recorded boards --------------------------------------------------------

@pytest.mark.whole_history
def test_every_organization_the_boards_write_is_mapped(identity, recordings):
    seen: set[str] = set()
    for path in glob.glob(str(recordings / "lmarena" / "fboulnois_*" / "*.csv")):
        with open(path, encoding="utf-8") as fh:
            seen.update(r["organization"] for r in csv.DictReader(fh))
    for path in glob.glob(str(recordings / "lmarena" / "arena_ai_daily_scrape" / "*" / "*.json")):
        doc = json.loads(Path(path).read_text())
        seen.update(m["vendor"] for m in (doc.get("models") or []) if isinstance(doc, dict))
    for path in glob.glob(str(recordings / "swebench" / "leaderboards_json" / "*.json")):
        for board in json.loads(Path(path).read_text())["leaderboards"]:
            seen.update(t[4:].strip() for r in board["results"] for t in r.get("tags") or []
                        if t.startswith("Org:"))
    missing = sorted(o for o in seen if o.strip() and o.strip().casefold() not in identity.org_countries)
    assert missing == []


@pytest.mark.whole_history
def test_epoch_country_names_all_resolve(identity, recordings):
    names: set[str] = set()
    for path in glob.glob(str(recordings / "epoch" / "**" / "*.csv"), recursive=True):
        with open(path, encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = [c for c in reader.fieldnames or [] if c in ("Country", "Country (of organization)")]
            for r in reader:
                for col in cols:
                    names.update(p.strip() for p in (r[col] or "").split(",") if p.strip())
    assert "United States of America" in names
    unresolved = sorted(n for n in names if identity.country_code(n) is None and n != "Multinational")
    assert unresolved == []


@pytest.mark.whole_history
def test_model_name_coverage_of_aider_and_livebench_top_50(identity, recordings):
    names: set[str] = set()
    for path in glob.glob(str(recordings / "aider" / "**" / "*.yml"), recursive=True):
        runs = yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        runs.sort(key=lambda r: -float(r.get("pass_rate_2") or r.get("pass_rate_1") or 0))
        names.update(str(r["model"]) for r in runs[:50])
    for path in glob.glob(str(recordings / "lmarena" / "arena_catalog" / "leaderboard-*.json")):
        for models in json.loads(Path(path).read_text()).values():
            names.update(sorted(models, key=lambda k: -models[k]["rating"])[:50])
    for path in glob.glob(str(recordings / "livebench" / "table_*" / "*.csv")):
        with open(path, encoding="utf-8") as fh:
            names.update(r[0] for r in list(csv.reader(fh))[1:] if r)
    covered = [n for n in names if all(identity.organization_of(p)[0] for p in split_components(n))]
    assert len(names) > 500
    assert len(covered) / len(names) > 0.98
