"""The service's settings, read from environment variables (pydantic-settings).

Configuration enters here and is passed down as plain values; nothing deeper reads the
environment. Every field's environment variable is its name in upper case (``MODEL_PATH``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digitcore.line_reader import DEFAULT_LINE_READER

MIB = 1024 * 1024
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", protected_namespaces=())

    model_path: Path = Field(Path("models/mnist_cnn.pth"), description="checkpoint to serve")
    line_reader_path: Path = Field(
        DEFAULT_LINE_READER,
        description="line reader that counts a number's digits for /read (trainer.lines); "
        "when the file is absent, /read cuts numbers by the digit model alone",
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto (CUDA if present), cpu, cuda"
    )
    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 in a container)")
    port: int = Field(8000, ge=0, le=65535)
    max_upload_bytes: int = Field(10 * MIB, ge=1, description="largest request body accepted")
    max_image_pixels: int = Field(40_000_000, ge=1, description="decompression-bomb guard")
    max_batch_files: int = Field(64, ge=1, description="most files in one /predict/batch request")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    workers: int = Field(1, ge=1, description="uvicorn worker processes (best: one per core)")
    access_log: bool = Field(True, description="log one line per request")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads per worker process")
    batch_max_size: int = Field(64, ge=1, description="most images in one forward pass")
    batch_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="longest a forward pass waits for more requests (0: it takes what is queued)",
    )

    log_format: Literal["text", "json"] = Field(
        "text", description="text lines, or json: one JSON object per line"
    )
    api_keys: SecretStr = Field(
        SecretStr(""), description="comma-separated keys for the API routes (unset: open)"
    )
    api_keys_file: Path | None = Field(
        None, description="file with more API keys, one per line (# comments allowed)"
    )
    admin_api_key: SecretStr | None = Field(
        None, description="enables POST /admin/reload for this bearer key"
    )
    cors_origins: str = Field(
        "", description="comma-separated origins allowed to call the API from a browser"
    )
    v2_model_name: str = Field(
        "mnist", pattern=MODEL_NAME, description="v2 protocol: the model taking normalized tensors"
    )
    v2_images_model_name: str = Field(
        "mnist-images", pattern=MODEL_NAME, description="v2 protocol: the model taking image files"
    )

    @model_validator(mode="after")
    def _distinct_model_names(self) -> Settings:
        if self.v2_model_name == self.v2_images_model_name:
            raise ValueError("V2_MODEL_NAME and V2_IMAGES_MODEL_NAME must differ")
        return self

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def split_list(text: str) -> list[str]:
    """``a, b,,c`` -> ``["a", "b", "c"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def read_api_keys(settings: Settings) -> tuple[str, ...]:
    """Every API key: ``API_KEYS`` and the lines of ``API_KEYS_FILE``; empty when the API is open.

    A key file that cannot be read raises :class:`OSError` (startup stops, naming the file).
    """
    keys = split_list(settings.api_keys.get_secret_value())
    if settings.api_keys_file is not None:
        for line in settings.api_keys_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
    return tuple(dict.fromkeys(keys))


def describe() -> str:
    """One line per setting: environment variable, default and meaning (for ``--help``)."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, Path):
            shown = default.as_posix()
        elif isinstance(default, SecretStr) or default is None:
            shown = "(unset)" if not default or not default.get_secret_value() else "****"
        else:
            shown = f"{default}"
        lines.append(f"  {name.upper():<20} {shown:<22} {field.description or ''}".rstrip())
    return "\n".join(lines)
