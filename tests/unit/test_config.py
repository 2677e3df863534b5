"""Configuration: defaults, file, environment, and clear errors naming the key."""

from pathlib import Path

import pytest

from fedserver.config import ConfigError, load_settings


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.instance.domain == "localhost:8000"
    assert settings.instance.scheme == "https"
    assert settings.server.port == 8000
    assert settings.database.url == ""
    assert settings.federation.allow_private_addresses is False
    assert settings.base_url == "https://localhost:8000"


def test_documented_config_file_matches_the_defaults(monkeypatch, tmp_path):
    """config.toml documents every key with its default value."""
    repo_config = Path(__file__).resolve().parents[2] / "config.toml"
    from_file = load_settings(repo_config, environ={})
    monkeypatch.chdir(tmp_path)
    defaults = load_settings(environ={})
    assert from_file.model_dump(exclude={"storage"}) == defaults.model_dump(exclude={"storage"})
    assert from_file.storage.data_dir == repo_config.parent / "data"
    documented = repo_config.read_text()
    for section, model in defaults:
        for key in type(model).model_fields:
            assert f"\n{key} = " in documented, f"[{section}] {key} is not documented in config.toml"


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "fed.toml"
    path.write_text('[instance]\ndomain = "shop.example"\n[server]\nport = 9000\n')
    settings = load_settings(path, environ={"FEDSERVER_SERVER__PORT": "9100", "FEDSERVER_INSTANCE__SCHEME": "http"})
    assert settings.instance.domain == "shop.example"
    assert settings.server.port == 9100
    assert settings.base_url == "http://shop.example"


def test_config_file_named_by_environment(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('[instance]\ndomain = "127.0.0.1:8001"\n')
    settings = load_settings(environ={"FEDSERVER_CONFIG": str(path)})
    assert settings.instance.domain == "127.0.0.1:8001"
    assert settings.hostname == "127.0.0.1"


def test_relative_data_dir_is_next_to_the_config_file(tmp_path):
    path = tmp_path / "fed.toml"
    path.write_text('[storage]\ndata_dir = "state"\n')
    assert load_settings(path, environ={}).storage.data_dir == tmp_path / "state"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"FEDSERVER_SERVER__PORT": "eighty"}, "[server] port (FEDSERVER_SERVER__PORT)"),
        ({"FEDSERVER_SERVER__PORT": "70000"}, "less than or equal to 65535"),
        ({"FEDSERVER_INSTANCE__SCHEME": "ftp"}, "[instance] scheme"),
        ({"FEDSERVER_INSTANCE__DOMAIN": "https://shop.example/"}, "host name with an optional port"),
        ({"FEDSERVER_DATABASE__URL": "mysql://x"}, "postgresql:// URL"),
        ({"FEDSERVER_SERVER__PROT": "1"}, "[server] prot (FEDSERVER_SERVER__PROT): unknown key"),
        ({"FEDSERVER_NOPE__X": "1"}, "unknown section [nope]"),
        ({"FEDSERVER_INSTANCE__TIMEZONE": "KST"}, "[instance] timezone (FEDSERVER_INSTANCE__TIMEZONE): 'KST' is not"),
        ({"FEDSERVER_INSTANCE__TIMEZONE": "Asia"}, "expected an IANA name like 'Asia/Seoul'"),
        ({"FEDSERVER_INSTANCE__TIMEZONE": "../../etc/passwd"}, "[instance] timezone"),
        ({"FEDSERVER_INSTANCE__TIMEZONE": "/etc/localtime"}, "[instance] timezone"),
        ({"FEDSERVER_INSTANCE__TIMEZONE": '""'}, "[instance] timezone"),
        ({"FEDSERVER_METRICS__TOKEN": "short"}, "[metrics] token (FEDSERVER_METRICS__TOKEN): expected an empty string"),
    ],
)
def test_wrong_values_name_the_key_and_the_expected_form(environ, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert expected in str(info.value)


def test_pages_show_times_in_seoul_unless_another_time_zone_is_configured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).instance.timezone == "Asia/Seoul"
    path = tmp_path / "fed.toml"
    path.write_text('[instance]\ntimezone = " Europe/Berlin "\n')
    assert load_settings(path, environ={}).instance.timezone == "Europe/Berlin"
    assert load_settings(path, environ={"FEDSERVER_INSTANCE__TIMEZONE": "UTC"}).instance.timezone == "UTC"


def test_broken_toml_is_reported_with_the_file_name(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[instance\ndomain = 1\n")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_settings(path, environ={})


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
