"""Unit tests of the presets (bridge/frameworks, the preset settings) on vectors
written by the real Laravel 8 and Symfony 5.4 classes (tests/frameworkvectors.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import config, php
from bridge.frameworks import crypt, laravel, symfony
from tests import frameworkvectors, harness

ID = "Ab3" + "x" * 36 + "Z"
ATTRIBUTES = {"_token": "t" * 40, "login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d": 42}


def adapter(key: str, cipher: str, previous: tuple[str, ...] = ()) -> laravel.Laravel:
    keys = [config.app_key_bytes(k) for k in (key, *previous)]
    return laravel.Laravel(cookie_name="laravel_session",
                           encrypter=crypt.Encrypter(keys, cipher))


@pytest.fixture(scope="module")
def vectors():
    """Per cipher: (key, what the real Encrypter wrote)."""
    cases = [dict(key=harness.app_key(16 if "128" in c else 32), cipher=c,
                  name="laravel_session", id=ID, attributes=ATTRIBUTES)
             for c in frameworkvectors.CIPHERS]
    answers = frameworkvectors.laravel_cookies(cases)
    return {case["cipher"]: (case["key"], answer)
            for case, answer in zip(cases, answers, strict=True)}


@pytest.mark.parametrize("cipher", frameworkvectors.CIPHERS)
def test_laravel_cookie_gives_the_session_id(vectors, cipher):
    key, answer = vectors[cipher]
    assert adapter(key, cipher).session_id(answer["cookie"]) == ID


@pytest.mark.parametrize("cipher", frameworkvectors.CIPHERS)
def test_laravel_cookie_of_another_name_or_key_is_no_session(vectors, cipher):
    key, answer = vectors[cipher]
    assert adapter(key, cipher).session_id(answer["other_name"]) is None
    assert adapter(key, cipher).session_id(ID) is None  # a bare id is no Laravel cookie
    other = harness.app_key(16 if "128" in cipher else 32)
    assert adapter(other, cipher).session_id(answer["cookie"]) is None
    assert adapter(other, cipher, previous=(key,)).session_id(answer["cookie"]) == ID


def test_laravel_cbc_cookie_with_a_tag_is_refused(vectors):
    key, answer = vectors["AES-256-CBC"]
    fields = json.loads(base64.b64decode(answer["cookie"]))
    fields["tag"] = base64.b64encode(b"\0" * 16).decode()
    tagged = base64.b64encode(json.dumps(fields).encode()).decode()
    assert adapter(key, "AES-256-CBC").session_id(tagged) is None


@pytest.mark.parametrize("cipher", frameworkvectors.CIPHERS)
def test_laravel_session_values_plain_and_encrypted(vectors, cipher):
    key, answer = vectors[cipher]
    reader = adapter(key, cipher)
    values = ((answer["plain_session"], "laravel"), (answer["session"], "laravel-encrypted"))
    for value, fmt in values:
        assert reader.decode(value, session_format="auto", max_bytes=1 << 20) == (fmt, ATTRIBUTES)


def test_laravel_large_encrypted_session_is_read():
    key = harness.app_key(32)
    big = {**ATTRIBUTES, "cart": "x" * 200_000}
    case = dict(key=key, cipher="AES-256-CBC", name="laravel_session", id=ID, attributes=big)
    answer = frameworkvectors.laravel_cookies([case])[0]
    decoded = adapter(key, "AES-256-CBC").decode(answer["session"], session_format="auto",
                                                 max_bytes=1 << 20)
    assert decoded == ("laravel-encrypted", big)


def test_laravel_encrypted_session_under_another_key_is_unreadable(vectors):
    _, answer = vectors["AES-256-GCM"]
    with pytest.raises(php.SessionDecodeError):
        adapter(harness.app_key(32), "AES-256-GCM").decode(
            answer["session"], session_format="auto", max_bytes=1 << 20)


@pytest.mark.parametrize(("token", "user"), [("upt", 1), ("post", 7), ("switch", 7)])
def test_symfony_user_is_the_innermost_tokens_user(token, user):
    serialized = frameworkvectors.symfony_tokens()[token].decode("utf-8", "surrogateescape")
    attributes = {"_security_main": serialized, "other": 1}
    scope, variables = symfony.Symfony().scope({"_sf2_attributes": attributes})
    assert php.lookup(scope, "id") == user
    assert variables is attributes


def test_symfony_other_context_or_no_token_is_not_authenticated():
    serialized = frameworkvectors.symfony_tokens()["upt"].decode()
    for variables in ({"_sf2_attributes": {"_security_main": serialized}}, {"_sf2_attributes": {}},
                      {}, {"_sf2_attributes": {"_security_admin": 5}}):
        with pytest.raises(KeyError):
            symfony.Symfony(context="admin").scope(variables)


@pytest.mark.parametrize("token", ["upt", "post", "switch"])
def test_symfony_truncated_tokens_are_refused(token):
    serialized = frameworkvectors.symfony_tokens()[token]
    for end in range(len(serialized)):
        variables = {"_sf2_attributes": {"_security_main": serialized[:end].decode("latin-1")}}
        with pytest.raises((KeyError, php.SessionDecodeError)):
            symfony.Symfony().scope(variables)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_hostile_cookie_texts_name_no_session(text):
    key = harness.app_key(32)
    assert adapter(key, "AES-256-CBC").session_id(text) is None
    assert adapter(key, "AES-256-GCM").session_id(text) is None


_BASE64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["iv", "value", "mac", "tag", "x"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=60), _BASE64)))
def test_hostile_envelopes_name_no_session(fields):
    cookie = base64.b64encode(json.dumps(fields).encode()).decode()
    for cipher in frameworkvectors.CIPHERS:
        key = harness.app_key(16 if "128" in cipher else 32)
        assert adapter(key, cipher).session_id(cookie) is None


def test_fuzzer_quick_run():
    done = subprocess.run([sys.executable, "fuzz/fuzz_frameworks.py", "--runs", "3000",
                           "--seed", "7"], capture_output=True, text=True, timeout=120,
                          cwd=harness.ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3000 inputs, 0 failures" in done.stdout


# --- the settings ---

KEY = harness.app_key(32)


def test_preset_sets_defaults_that_settings_override():
    loaded = config.load({"preset": "laravel", "app_key": KEY}, {})
    assert (loaded.session_cookie, loaded.session_prefix, loaded.user_key) == (
        "laravel_session", "laravel_database_laravel_cache:",
        "login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d")
    mine = config.load({"app_key": KEY, "session_prefix": "app:"}, {"BRIDGE_PRESET": "laravel"})
    assert mine.session_prefix == "app:" and mine.session_cookie == "laravel_session"
    sf = config.load({"preset": "symfony"}, {})
    assert (sf.session_prefix, sf.user_key, sf.symfony_context, sf.session_cookie) == (
        "sf_s", "id", "main", "PHPSESSID")
    assert config.load({}, {}).session_prefix == ""


@pytest.mark.parametrize(("flags", "setting"), [
    ({"preset": "laravel"}, "app_key"),
    ({"preset": "laravel", "app_key": harness.app_key(16)}, "app_key"),
    ({"preset": "laravel", "app_key": KEY, "app_cipher": "aes-128-gcm"}, "app_key"),
    ({"preset": "laravel", "app_key": KEY, "previous_app_keys": harness.app_key(16)},
     "previous_app_keys"),
    ({"app_key": "base64:not base64!"}, "app_key"),
    ({"app_cipher": "aes-256-ecb"}, "app_cipher"),
    ({"preset": "rails"}, "preset"),
])
def test_bad_framework_settings_are_refused(flags, setting):
    with pytest.raises(config.ConfigError) as caught:
        config.load(flags, {})
    assert caught.value.setting == setting


def test_check_config_never_prints_the_keys():
    done = harness.run_cli("check-config", "--preset", "laravel", "--app-key", KEY,
                           "--previous-app-keys", harness.app_key(32))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["app_key"] == "***" and shown["previous_app_keys"] == ["***"]
    assert KEY not in done.stdout
