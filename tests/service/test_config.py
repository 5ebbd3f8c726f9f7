"""Settings come from environment variables, with the documented defaults, and are validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.__main__ import main
from service.config import Settings, read_api_keys, split_list
from service.logs import log_config
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
    assert settings.log_format == "text" and settings.cors_origins == ""
    assert settings.api_keys.get_secret_value() == "" and settings.api_keys_file is None
    assert settings.admin_api_key is None


def test_environment_variables_override(clean_env):
    values = {
        "MODEL_PATH": "elsewhere/m.pth",
        "LINE_READER_PATH": "elsewhere/lines.pth",
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
        "LOG_FORMAT": "JSON",
        "API_KEYS": "a, b",
        "API_KEYS_FILE": "keys.txt",
        "ADMIN_API_KEY": "root",
        "CORS_ORIGINS": "https://a.example,https://b.example",
        "V2_MODEL_NAME": "digits",
        "V2_IMAGES_MODEL_NAME": "digit-files",
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
    assert settings.log_format == "json"
    assert settings.api_keys.get_secret_value() == "a, b"
    assert settings.api_keys_file == Path("keys.txt")
    assert settings.admin_api_key.get_secret_value() == "root"
    assert split_list(settings.cors_origins) == ["https://a.example", "https://b.example"]
    assert "root" not in repr(settings) and "a, b" not in repr(settings)
    assert (settings.v2_model_name, settings.v2_images_model_name) == ("digits", "digit-files")
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


def test_api_keys_come_from_the_variable_and_the_file(clean_env, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nk3\n\nk4 # ci\nk1\n")
    clean_env.setenv("API_KEYS", " k1,k2,, ")
    clean_env.setenv("API_KEYS_FILE", str(keys))
    assert read_api_keys(Settings()) == ("k1", "k2", "k3", "k4")
