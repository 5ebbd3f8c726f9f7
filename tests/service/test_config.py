"""Settings come from environment variables, with the documented defaults, and are validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.__main__ import log_config, main
from service.config import Settings
from testkit.servers import SETTING_VARS


@pytest.fixture
def clean_env(monkeypatch):
    for name in SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_documented_defaults(clean_env):
    settings = Settings()
    assert settings.model_path == Path("models/mnist_cnn.pth")
    assert (settings.device, settings.host, settings.port) == ("auto", "127.0.0.1", 8000)
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.max_image_pixels == 40_000_000
    assert settings.max_batch_files == 64
    assert (settings.log_level, settings.workers, settings.torch_threads) == ("info", 1, 1)
    assert (settings.batch_max_size, settings.batch_wait_ms) == (64, 0.0)
    assert settings.access_log is True


def test_environment_variables_override(clean_env):
    values = {
        "MODEL_PATH": "elsewhere/m.pth",
        "DEVICE": "cpu",
        "HOST": "0.0.0.0",
        "PORT": "9001",
        "MAX_UPLOAD_BYTES": "1234",
        "MAX_IMAGE_PIXELS": "5000",
        "MAX_BATCH_FILES": "7",
        "LOG_LEVEL": "DEBUG",
        "WORKERS": "2",
        "TORCH_THREADS": "2",
        "BATCH_MAX_SIZE": "16",
        "BATCH_WAIT_MS": "2.5",
        "ACCESS_LOG": "false",
    }
    for name, value in values.items():
        clean_env.setenv(name, value)
    settings = Settings()
    assert settings.model_path == Path("elsewhere/m.pth") and settings.device == "cpu"
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9001, 2)
    assert (settings.max_upload_bytes, settings.max_image_pixels) == (1234, 5000)
    assert (settings.max_batch_files, settings.log_level) == (7, "debug")
    assert (settings.torch_threads, settings.batch_max_size, settings.batch_wait_ms) == (2, 16, 2.5)
    assert settings.access_log is False
    assert set(values) == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEVICE", "tpu"), ("PORT", "70000"), ("MAX_UPLOAD_BYTES", "0"), ("LOG_LEVEL", "loud")],
)
def test_invalid_values_are_refused(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_main_reports_an_invalid_setting_in_one_line(clean_env, capsys):
    clean_env.setenv("WORKERS", "none")
    assert main([]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mnist-serve: invalid setting: WORKERS:") and "\n" not in error


def test_log_config_adds_the_service_logger():
    config = log_config("debug")
    assert config["loggers"]["service"] == {"handlers": ["default"], "level": "DEBUG"}
    assert "uvicorn.access" in config["loggers"]
