"""Configuration: defaults, then a TOML file, then ``STYLEWATCH_*`` environment variables.

Built once by the CLI (the composition root) and handed to each component as its section.
Environment keys use ``__`` between levels: ``STYLEWATCH_SOURCES__CIVITAI__BASE_URL``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from alerts.settings import EmailSettings, WebhookSettings
from alerts.settings import Section as _Section
from detectors.errors import ConfigError

ENV_PREFIX = "STYLEWATCH_"
CONFIG_ENV_VAR = "STYLEWATCH_CONFIG"


class DatabaseSettings(_Section):
    url: str | None = None  # default: sqlite:///<data_dir>/stylewatch.db


class StorageSettings(_Section):
    """Where blobs live: a folder (default ``<data_dir>/blobs``) or ``s3://bucket/prefix``."""

    blobs: str | None = None  # a folder path, or s3://bucket[/prefix]
    # S3 only. endpoint_url unset: AWS itself. Credentials unset: the AWS default chain
    # (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, an instance or pod role).
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "path"
    max_attempts: int = Field(default=5, ge=1, le=20, description="tries per S3 request")
    timeout_s: float = Field(default=30.0, gt=0, description="seconds to connect or read")
    multipart_mb: int = Field(default=16, ge=5, le=5120, description="part size of big puts")

    @field_validator("blobs")
    @classmethod
    def _folder_or_bucket(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("s3:"):
            s3_location(value)
        elif value is not None and not value.strip():
            raise ValueError("must be a folder path or s3://bucket/prefix")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _whole_key(self) -> StorageSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        return self

    @property
    def is_s3(self) -> bool:
        return self.blobs is not None and self.blobs.startswith("s3:")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_location(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as (bucket, ``some/prefix/``); ValueError if malformed."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if rest == url or not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"{url[:100]!r} is not s3://bucket/prefix with a valid bucket name "
            "(3-63 lowercase letters, digits, dots, hyphens)"
        )
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class CivitaiSettings(_Section):
    enabled: bool = True
    base_url: str = "https://civitai.com"
    api_key: SecretStr | None = None
    interval: int = Field(default=600, ge=30, description="seconds between polls")


class HuggingFaceSettings(_Section):
    enabled: bool = True
    endpoint: str = "https://huggingface.co"
    token: SecretStr | None = None
    interval: int = Field(default=600, ge=30, description="seconds between polls")


class FolderSettings(_Section):
    enabled: bool = False
    path: Path | None = None

    @model_validator(mode="after")
    def _path_when_enabled(self) -> FolderSettings:
        if self.enabled and self.path is None:
            raise ValueError("path is required when the folder source is enabled")
        return self


class SourcesSettings(_Section):
    max_bytes_per_upload: int = Field(
        default=4 * 1024 * 1024,
        ge=512 * 1024,
        le=1024**3,
        description="bytes the poller may read for one upload: hub JSON, header, fingerprint",
    )
    civitai: CivitaiSettings = CivitaiSettings()
    huggingface: HuggingFaceSettings = HuggingFaceSettings()
    folder: FolderSettings = FolderSettings()


class ScreeningSettings(_Section):
    flag_threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class ProbeBaseSettings(_Section):
    """One derivative base (``[probe.bases.<name>]``): see detectors.probe.bases."""

    family: str = "sdxl"
    path: Path
    # What names this base in metadata or the hub's baseModel (unset: the table's name).
    match: list[str] = Field(default_factory=list)
    prompt_prefix: str = ""


class ProbeSettings(_Section):
    device: str = "auto"
    base_models: dict[str, Path] = Field(default_factory=dict)
    # Derivative bases (Pony, Illustrious, NoobAI): an upload whose metadata or hub names one
    # is probed on it, with its prompt prefix; else on its family's base_models entry.
    bases: dict[str, ProbeBaseSettings] = Field(default_factory=dict)
    max_images: int = Field(default=8, ge=1, le=64)
    lora_scale: float = Field(default=1.0, gt=0.0, le=4.0)
    # Draw with the LoRA merged into the base weights (a draw costs the base model's; a copy
    # of each adapted base weight is kept to restore it). false: PEFT's LoRA branch per call.
    merge_loras: bool = True
    # How each probe image is drawn (part of the base cache's key: changing one regenerates
    # the cached base images). size_px unset: the base model's own resolution.
    steps: int = Field(default=20, ge=1, le=200)
    guidance_scale: float = Field(default=6.0, ge=0.0, le=30.0)
    size_px: int | None = Field(default=None, ge=16, le=2048, multiple_of=8)
    batch_images: int = Field(default=8, ge=1, le=64, description="images per UNet batch")
    # The detection (headroom-normalised style lift less half the next artist's) that flags an
    # upload (stage "probe"). Unset: the embedder's own, calibrated on decoy artists and raised
    # to four times what the base model reaches against itself (docs/quality.md).
    lift_threshold: float | None = Field(default=None, gt=0.0, le=2.0)
    # A full checkpoint is downloaded (streamed to disk under <data_dir>/probe-downloads,
    # deleted after) only up to this size; a larger one is recorded "not probed: over the
    # size budget". The download also waits while the disk would keep less than
    # checkpoint_min_free_bytes free.
    checkpoint_max_bytes: int = Field(
        default=8 * 1024**3, ge=1024**2, le=256 * 1024**3, description="largest checkpoint probed"
    )
    checkpoint_min_free_bytes: int = Field(
        default=2 * 1024**3, ge=0, le=1024**4, description="disk left free by a download"
    )


class StyleSettings(_Section):
    # "style": style-v1, learned and shipped with the package; "gram": gram-v1, hand-made.
    embedder: Literal["style", "gram", "clip", "csd"] = "style"
    clip_weights: Path | None = None
    csd_weights: Path | None = None


class QueueSettings(_Section):
    backend: Literal["inprocess", "procrastinate"] = "inprocess"
    # How often serve looks for uploads waiting for a probe and queues them.
    sweep_interval_s: float = Field(default=30.0, gt=0)
    # procrastinate only: a worker writes a heartbeat every heartbeat_s; one silent for
    # stalled_after_s is dead, and its jobs go back to the queue for another worker.
    heartbeat_s: float = Field(default=10.0, gt=0)
    stalled_after_s: float = Field(default=30.0, gt=0)
    # On SIGTERM a worker lets its current job finish this long, then puts it back.
    shutdown_grace_s: float = Field(default=60.0, ge=0)
    concurrency: int = Field(default=4, ge=1, le=256, description="jobs at once, besides probes")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=8788, ge=0, le=65535, description="0: no /metrics")

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> QueueSettings:
        if self.stalled_after_s < 2 * self.heartbeat_s:
            raise ValueError("stalled_after_s must be at least twice heartbeat_s")
        return self


class AlertsSettings(_Section):
    email: EmailSettings = EmailSettings()
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    batch_window_s: float = Field(default=180.0, ge=0, description="findings batched per message")
    max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base_s: float = Field(default=30.0, gt=0)
    retry_cap_s: float = Field(default=3600.0, gt=0)
    poll_interval_s: float = Field(default=5.0, gt=0)


class DigestSettings(_Section):
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    hour: int = Field(default=9, ge=0, le=23)
    timezone: str = "UTC"


class HubHistorySettings(_Section):
    """Searching the hubs for what they already hold of a newly registered artist."""

    enabled: bool = True  # on `artist add` (unless --no-hubs) and in serve's sweeps
    interval: int = Field(default=900, ge=60, description="seconds between serve's sweeps")
    searches_per_sweep: int = Field(default=20, ge=1, description="searches one sweep runs")
    max_pages: int = Field(default=100, ge=1, le=10_000, description="pages read per search")


class TakedownSettings(_Section):
    """Checking the uploads of confirmed findings on their hubs again."""

    enabled: bool = True
    interval: int = Field(default=86_400, ge=60, description="seconds between checks of one upload")
    still_up_days: float = Field(default=7.0, gt=0, description="after this, moderators see it")


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    base_url: str | None = None
    secret_key: SecretStr | None = None


def default_data_dir() -> Path:
    """The user's data directory (XDG on Linux)."""
    return Path(platformdirs.user_data_dir("stylewatch", appauthor=False))


class Settings(BaseSettings):
    """Every setting stylewatch has; see config.example.toml for each key."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    sources: SourcesSettings = SourcesSettings()
    screening: ScreeningSettings = ScreeningSettings()
    probe: ProbeSettings = ProbeSettings()
    style: StyleSettings = StyleSettings()
    queue: QueueSettings = QueueSettings()
    alerts: AlertsSettings = AlertsSettings()
    digest: DigestSettings = DigestSettings()
    web: WebSettings = WebSettings()
    hub_history: HubHistorySettings = HubHistorySettings()
    takedown: TakedownSettings = TakedownSettings()

    @property
    def database_url(self) -> str:
        """The configured database URL, or SQLite in the data dir."""
        return self.database.url or f"sqlite:///{self.data_dir / 'stylewatch.db'}"

    @property
    def is_embedded(self) -> bool:
        """True on the embedded default (SQLite)."""
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _queue_needs_postgres(self) -> Settings:
        if self.queue.backend == "procrastinate" and not self.database_url.startswith("postgresql"):
            raise ValueError("queue: the procrastinate backend needs a postgresql database url")
        return self


class _TomlSource(PydanticBaseSettingsSource):
    """Values from an already-parsed TOML document."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError([f"config file {path} does not exist"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"config file {path} is not UTF-8 text (byte {exc.start})"]) from exc
    except ValueError as exc:  # int() refuses an integer of over 4,300 digits
        raise ConfigError([f"config file {path} holds an integer too long to read"]) from exc
    except RecursionError as exc:  # tomllib recurses once per nested array or inline table
        raise ConfigError([f"config file {path} nests arrays or tables too deeply"]) from exc
    except OSError as exc:
        raise ConfigError([f"config file {path} cannot be read: {exc.strerror}"]) from exc


def _problem_lines(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"] and ": " in message:  # a cross-section check names its own key
            lines.append(message)
            continue
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
        if any(word in key for word in ("secret", "password", "token", "api_key", "access_key")):
            shown = ""
        lines.append(f"{key}: {message}{shown}")
    return lines


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the one Settings: defaults < TOML file < ``STYLEWATCH_*`` < ``overrides``.

    Raises ConfigError with one line per bad key.
    """
    data = _read_toml(config_file) if config_file is not None else {}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _TomlSource(settings_cls, data))

    try:
        return _Loaded(**overrides)
    except ValidationError as exc:
        raise ConfigError(_problem_lines(exc)) from exc
