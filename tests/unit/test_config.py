"""bridge.config: defaults < file < environment < command line, each value parsed once."""

from __future__ import annotations

import pytest

from bridge import config
from bridge.config import ConfigError


def load(flags=None, environ=None, toml: str | None = None, tmp_path=None):
    path = None
    if toml is not None:
        path = tmp_path / "bridge.toml"
        path.write_text(toml)
    return config.load(flags or {}, environ or {}, str(path) if path else None)


def test_defaults():
    loaded = load()
    assert (loaded.port, loaded.session_cookie, loaded.allowed_origins) == (6001, "PHPSESSID", ())


def test_each_layer_overrides_the_one_below(tmp_path):
    toml = 'port = 7001\nchannel = "from-file"\nlog_level = "warning"\n'
    environ = {"BRIDGE_PORT": "7002", "BRIDGE_CHANNEL": "from-env"}
    loaded = load({"port": 7003, "channel": None}, environ, toml, tmp_path)
    assert loaded.port == 7003  # command line
    assert loaded.channel == "from-env"  # a flag not given (None) leaves the layer below
    assert loaded.log_level == "warning"  # file


def test_config_path_may_come_from_the_environment(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text("admin_port = 0\n")
    assert config.load({}, {"BRIDGE_CONFIG": str(path)}).admin_port == 0


@pytest.mark.parametrize("environ,setting", [
    ({"BRIDGE_PORT": "0"}, "port"),
    ({"BRIDGE_PORT": "http"}, "port"),
    ({"BRIDGE_REDIS_TIMEOUT": "-1"}, "redis_timeout"),
    ({"BRIDGE_LOG_LEVEL": "loud"}, "log_level"),
    ({"BRIDGE_KEEP_ALIVE": "perhaps"}, "keep_alive"),
    ({"BRIDGE_REDIS_URL": "http://x"}, "redis_url"),
    ({"BRIDGE_ALLOWED_ORIGINS": "*"}, "allowed_origins"),  # '*' needs insecure_any_origin
    ({"BRIDGE_ADMIN_PORT": "6001"}, "admin_port"),  # same as port
])
def test_bad_values_name_their_setting(environ, setting):
    with pytest.raises(ConfigError) as bad:
        load(environ=environ)
    assert bad.value.setting == setting


def test_a_bad_or_unknown_file_entry_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        load(toml="prot = 1\n", tmp_path=tmp_path)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(toml="port = \n", tmp_path=tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        config.load({}, {}, str(tmp_path / "missing.toml"))


def test_every_setting_is_declared_once_with_a_parsable_default():
    names = [setting.name for setting in config.SETTINGS]
    assert len(names) == len(set(names))
    for setting in config.SETTINGS:
        assert setting.env == "BRIDGE_" + setting.name.upper()
        assert setting.parse(setting.default) == setting.default, setting.name
