"""Settings from the environment and the TOML config file; every error names its setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from leaderwatch.bot.settings import DEFAULT_DB, ConfigError, Settings, SourceSettings, load_settings

KNOWN = frozenset({"lmarena", "aider"})


def write(tmp_path: Path, text: str, name: str = "custom.toml") -> Path:
    """A config file under tmp_path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def with_config(tmp_path: Path, text: str, **env: str) -> Settings:
    """Settings from a config file named by LEADERWATCH_CONFIG, plus environment variables."""
    path = write(tmp_path, text)
    return load_settings({"LEADERWATCH_CONFIG": str(path), **env}, KNOWN, cwd=tmp_path)


def test_defaults_with_nothing_set(tmp_path):
    s = load_settings({}, KNOWN, cwd=tmp_path)
    assert s == Settings()
    assert s.db_path == DEFAULT_DB == "leaderwatch.db"
    assert s.config_path is None
    assert s.http_port is None
    assert s.slack_mode == "socket"
    assert s.log_level == "INFO"
    assert s.sources == {} and s.aliases == {} and s.groups == {}
    assert not s.has_chat


def test_blank_environment_values_count_as_unset(tmp_path):
    s = load_settings({"LEADERWATCH_HTTP_PORT": "  ", "LEADERWATCH_DB": "", "SLACK_BOT_TOKEN": " "},
                      KNOWN, cwd=tmp_path)
    assert s == Settings()


@pytest.mark.parametrize("value", ["host=db.example dbname=lw user=lw password=s3cret", " dbname=lw"])
def test_a_key_value_postgres_string_is_refused_with_the_url_form(tmp_path, value: str):
    with pytest.raises(ConfigError) as caught:
        load_settings({"LEADERWATCH_DB": value}, KNOWN, cwd=tmp_path)
    message = str(caught.value)
    assert message.startswith("LEADERWATCH_DB") and "postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in message
    assert "s3cret" not in message and list(tmp_path.iterdir()) == []  # no SQLite file of that name
    for path in ("lw.db", "data/lw=2.db", "postgresql://lw@db.example/lw"):  # paths and URLs are taken
        assert load_settings({"LEADERWATCH_DB": path}, KNOWN, cwd=tmp_path).db_path == path


def test_environment_values(tmp_path):
    s = load_settings({
        "LEADERWATCH_DB": str(tmp_path / "h.db"), "LEADERWATCH_HTTP_PORT": "8080",
        "LEADERWATCH_SLACK_MODE": "HTTP", "LEADERWATCH_LOG_LEVEL": "debug",
        "LEADERWATCH_RECORDINGS": "/data", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1",
        "DISCORD_TOKEN": "d", "LEADERWATCH_SLACK_API_URL": "http://127.0.0.1:9/api/",
    }, KNOWN, cwd=tmp_path)
    assert s.db_path == str(tmp_path / "h.db")
    assert s.http_port == 8080
    assert s.slack_mode == "http"
    assert s.log_level == "DEBUG"
    assert s.recordings == "/data"
    assert (s.slack_bot_token, s.slack_app_token, s.discord_token) == ("xoxb-1", "xapp-1", "d")
    assert s.slack_api_url == "http://127.0.0.1:9/api/"
    assert s.has_chat


def test_config_file_values(tmp_path):
    s = with_config(tmp_path, """
db = "history.db"
http_port = 9000
slack_mode = "http"
log_level = "warning"

[sources.lmarena]
interval = "15m"

[sources.aider]
enabled = false

[aliases]
"GPT 4o" = "gpt-4o"

[groups.nordics]
countries = ["SE", "NO", "DK", "FI", "IS"]
""")
    assert s.config_path == str(tmp_path / "custom.toml")
    assert s.db_path == "history.db"
    assert s.http_port == 9000
    assert s.slack_mode == "http"
    assert s.log_level == "WARNING"
    assert s.sources == {"lmarena": SourceSettings(True, 900), "aider": SourceSettings(False, None)}
    assert s.aliases == {"GPT 4o": "gpt-4o"}
    assert s.groups == {"nordics": {"countries": ["SE", "NO", "DK", "FI", "IS"]}}


def test_environment_wins_over_the_file(tmp_path):
    s = with_config(tmp_path, 'db = "file.db"\nhttp_port = 9000\nslack_mode = "http"\nlog_level = "ERROR"\n',
                    LEADERWATCH_DB="env.db", LEADERWATCH_HTTP_PORT="8081", LEADERWATCH_SLACK_MODE="socket",
                    LEADERWATCH_LOG_LEVEL="INFO")
    assert (s.db_path, s.http_port, s.slack_mode, s.log_level) == ("env.db", 8081, "socket", "INFO")


def test_default_config_file_in_cwd_is_read(tmp_path):
    write(tmp_path, 'db = "from-default.db"\n', name="leaderwatch.toml")
    s = load_settings({}, KNOWN, cwd=tmp_path)
    assert s.db_path == "from-default.db"
    assert s.config_path == str(tmp_path / "leaderwatch.toml")


@pytest.mark.parametrize("value", ["http", "eighty", "80.5", "70000", "-1"])
def test_bad_http_port_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match="LEADERWATCH_HTTP_PORT") as info:
        load_settings({"LEADERWATCH_HTTP_PORT": value}, KNOWN, cwd=tmp_path)
    assert value in str(info.value)


@pytest.mark.parametrize("value", ['"x"', "true", "80.5", "70000"])
def test_bad_http_port_in_the_file_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match="LEADERWATCH_HTTP_PORT"):
        with_config(tmp_path, f"http_port = {value}\n")


def test_bad_slack_mode_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="LEADERWATCH_SLACK_MODE") as info:
        load_settings({"LEADERWATCH_SLACK_MODE": "websocket"}, KNOWN, cwd=tmp_path)
    assert "socket" in str(info.value) and "http" in str(info.value) and "websocket" in str(info.value)


def test_bad_log_level_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="LEADERWATCH_LOG_LEVEL"):
        load_settings({"LEADERWATCH_LOG_LEVEL": "loud"}, KNOWN, cwd=tmp_path)


def test_bad_slack_bot_token_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN.*xoxb-"):
        load_settings({"SLACK_BOT_TOKEN": "xapp-wrong-token"}, KNOWN, cwd=tmp_path)


def test_missing_config_file_names_the_setting_and_the_path(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="LEADERWATCH_CONFIG") as info:
        load_settings({"LEADERWATCH_CONFIG": str(missing)}, KNOWN, cwd=tmp_path)
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_config_that_is_a_directory_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="LEADERWATCH_CONFIG"):
        load_settings({"LEADERWATCH_CONFIG": str(tmp_path)}, KNOWN, cwd=tmp_path)


def test_invalid_toml_names_the_setting_and_the_file(tmp_path):
    path = write(tmp_path, "[sources.lmarena\ninterval = 15m\n")
    with pytest.raises(ConfigError, match="LEADERWATCH_CONFIG") as info:
        load_settings({"LEADERWATCH_CONFIG": str(path)}, KNOWN, cwd=tmp_path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)
    assert "line 1" in str(info.value)  # tomllib's position, to find the mistake


def test_config_not_in_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[aliases]\n"caf\u00e9" = "x"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="LEADERWATCH_CONFIG") as info:
        load_settings({"LEADERWATCH_CONFIG": str(path)}, KNOWN, cwd=tmp_path)
    assert "UTF-8" in str(info.value)


def test_invalid_default_config_is_reported(tmp_path):
    write(tmp_path, "db = \n", name="leaderwatch.toml")
    with pytest.raises(ConfigError, match="leaderwatch.toml is not valid TOML"):
        load_settings({}, KNOWN, cwd=tmp_path)


def test_unknown_source_section_names_it_and_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"\[sources\.lmarenaa\]") as info:
        with_config(tmp_path, "[sources.lmarenaa]\nenabled = false\n")
    assert "unknown source" in str(info.value)
    assert "aider, lmarena" in str(info.value)


def test_unknown_sources_are_accepted_when_no_list_is_given(tmp_path):
    path = write(tmp_path, "[sources.future]\nenabled = false\n")
    s = load_settings({"LEADERWATCH_CONFIG": str(path)}, None, cwd=tmp_path)
    assert s.sources == {"future": SourceSettings(False, None)}


@pytest.mark.parametrize(("body", "pattern"), [
    ("[sources.lmarena]\nintervall = \"1h\"\n", r"\[sources\.lmarena\]: unknown key 'intervall'"),
    ("[sources.lmarena]\nenabled = \"no\"\n", r"\[sources\.lmarena\] enabled: expected true or false"),
    ("sources = 3\n", r"config \[sources\]"),
    ("[sources]\nlmarena = 5\n", r"\[sources\.lmarena\]: expected a table"),
    ("aliases = [\"x\"]\n", r"config \[aliases\]"),
    ("[aliases]\nx = 1\n", r"config \[aliases\]"),
    ("[groups]\nnordics = \"SE\"\n", r"config \[groups\]"),
])
def test_bad_tables_name_the_section(tmp_path, body, pattern):
    with pytest.raises(ConfigError, match=pattern):
        with_config(tmp_path, body)


@pytest.mark.parametrize(("value", "seconds"), [
    ('"15m"', 900), ('"1h"', 3600), ("3600", 3600), ('"90s"', 90), ('"1d"', 86400), ('"1.5h"', 5400),
    ('" 2H "', 7200), ("60", 60), ("120.7", 120), ('"2w"', 14 * 86400), ('"1w"', 7 * 86400),
])
def test_durations(tmp_path, value, seconds):
    s = with_config(tmp_path, f"[sources.lmarena]\ninterval = {value}\n")
    assert s.sources["lmarena"].interval_seconds == seconds
    assert s.sources["lmarena"].enabled


@pytest.mark.parametrize("value", ['"30s"', "59", "0", "-5"])
def test_too_short_interval_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match=r"\[sources\.lmarena\] interval: .*at least 60s"):
        with_config(tmp_path, f"[sources.lmarena]\ninterval = {value}\n")


@pytest.mark.parametrize("value", ['"soon"', '"15 minutes"', '"m"', '""', '"600"', '"-1h"', '"infm"',
                                  '"nanh"', '"1e400s"'])
def test_bad_duration_names_the_setting_and_the_grammar(tmp_path, value):
    pattern = (r"\[sources\.lmarena\] interval: `.*` is not a duration; write a number and a unit: s, m, h, "
               r"d or w, e\.g\. 90s, 30m, 1\.5h, 2d, 2w")
    with pytest.raises(ConfigError, match=pattern):
        with_config(tmp_path, f"[sources.lmarena]\ninterval = {value}\n")


@pytest.mark.parametrize("value", ["true", "[1]", "inf", "nan"])
def test_a_value_that_is_no_number_nor_text_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match=r"\[sources\.lmarena\] interval: expected a number of seconds or a "
                                          r"duration, a number and a unit"):
        with_config(tmp_path, f"[sources.lmarena]\ninterval = {value}\n")


def test_suites_add_to_and_redefine_the_built_in_ones(tmp_path):
    s = with_config(tmp_path, '[suites.agents]\nboards = ["swebench/*", "Epoch/OS_World"]\n'
                              '[suites.vision]\nboards = ["lmarena/vision"]\n')
    assert s.suites["agents"] == ("swebench/*", "epoch/os_world")
    assert s.suites["vision"] == ("lmarena/vision",)
    assert s.suites["coding"][0] == "aider/*" and s.suites["all"] == ("*",)
    assert with_config(tmp_path, "").suites["vision"][0] == "lmarena/vision*"


@pytest.mark.parametrize(("body", "pattern"), [
    ('[suites.agents]\nboards = "swebench/*"\n', r"config \[suites\.agents\]: expected boards = \["),
    ('[suites.agents]\nboard = ["swebench/*"]\n', r"config \[suites\.agents\]: expected .* and nothing"),
    ('[suites.agents]\nboards = []\n', r"config \[suites\]: suite `agents`: give one or more board patterns"),
    ('[suites."my/boards"]\nboards = ["a/*"]\n', r"config \[suites\]: suite `my/boards`: a name is lower"),
    ("suites = 3\n", r"config \[suites\]: expected \[suites\.NAME\] tables"),
])
def test_a_bad_suite_names_the_section(tmp_path, body, pattern):
    with pytest.raises(ConfigError, match=pattern):
        with_config(tmp_path, body)


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(AttributeError):
        s.db_path = "other.db"  # type: ignore[misc]


def test_max_subscriptions_from_the_environment_or_the_file(tmp_path):
    assert with_config(tmp_path, "").max_subscriptions == 200
    assert with_config(tmp_path, "max_subscriptions = 50\n").max_subscriptions == 50
    assert with_config(tmp_path, "max_subscriptions = 50\n",
                       LEADERWATCH_MAX_SUBSCRIPTIONS="1000").max_subscriptions == 1000


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "1000000"])
def test_bad_max_subscriptions_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match=r"LEADERWATCH_MAX_SUBSCRIPTIONS: expected a whole number of rules "
                                          r"one channel may follow, from 1 to 100000 \(default 200\), got"):
        with_config(tmp_path, "", LEADERWATCH_MAX_SUBSCRIPTIONS=value)
