"""Settings: env prefix, validation messages, masked secrets, immutability."""

from __future__ import annotations

import pydantic
import pytest

from stream_app.errors import ConfigError
from stream_app.settings import load_settings
from stream_app.wiring import detector_params


def test_env_prefix_and_types(monkeypatch):
    monkeypatch.setenv("SM_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    monkeypatch.setenv("SM_BATCH_MAX_SIZE", "16")
    settings = load_settings()
    assert settings.kafka_bootstrap == "k1:9092,k2:9093"
    assert settings.batch_max_size == 16


def test_bad_value_gives_one_clear_message(monkeypatch):
    monkeypatch.setenv("SM_BATCH_MAX_SIZE", "zero")
    monkeypatch.setenv("SM_KAFKA_BOOTSTRAP", "no-port")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SM_BATCH_MAX_SIZE" in message and "SM_KAFKA_BOOTSTRAP" in message


def test_secrets_are_masked_in_the_startup_summary():
    settings = load_settings(redis_url="redis://:hunter2@cache:6379/0", kafka_sasl_password="s3cret")
    summary = str(settings.masked())
    assert "hunter2" not in summary and "s3cret" not in summary
    assert settings.redis_url.get_secret_value().startswith("redis://:hunter2")


def test_settings_are_frozen():
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.batch_max_size = 3  # type: ignore[misc]


def test_redis_url_scheme_is_checked():
    with pytest.raises(ConfigError, match="SM_REDIS_URL"):
        load_settings(redis_url="http://nope")


def test_the_detector_sees_the_models_label_floor_unless_the_setting_overrides_it(monkeypatch):
    assert detector_params(load_settings()).label_floor == 0.0  # labels given (gold)
    assert detector_params(load_settings(), 0.14).label_floor == 0.14
    monkeypatch.setenv("SM_ALERT_LABEL_FLOOR", "0.3")
    assert detector_params(load_settings(), 0.14).label_floor == 0.3
