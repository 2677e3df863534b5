"""Configuration: `config.toml` parsed into pydantic settings, overridable by environment.

Precedence, lowest first: built-in defaults, the TOML file, `FEDSERVER_<SECTION>__<KEY>`
environment variables. Nothing here runs at import time; `load_settings` is called by
the command line and by tests.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "FEDSERVER_"
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}(:\d{1,5})?$)"
    r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(:\d{1,5})?$"
)


class ConfigError(Exception):
    """A configuration problem, with a message naming the key and the expected form."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceSettings(_Section):
    domain: str = "localhost:8000"
    scheme: Literal["https", "http"] = "https"
    name: str = "fedserver"
    description: str = ""
    registrations: Literal["closed", "approval", "open"] = "closed"
    languages: list[str] = Field(default_factory=lambda: ["ko", "en"])
    timezone: str = "Asia/Seoul"
    rules: list[str] = Field(default_factory=list)
    publish_domain_blocks: bool = True

    @field_validator("rules")
    @classmethod
    def _check_rules(cls, value: list[str]) -> list[str]:
        rules = [rule.strip() for rule in value]
        if len(rules) > 50 or any(not rule or len(rule) > 500 for rule in rules):
            raise ValueError("expected at most 50 rules, each 1 to 500 characters")
        return rules

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DOMAIN_RE.match(value):
            raise ValueError("expected a host name with an optional port, like 'shop.example' or '127.0.0.1:8001'")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        value = value.strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"'{value}' is not a time zone; expected an IANA name like 'Asia/Seoul' or 'UTC'") from None
        return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    shutdown_timeout: float = Field(default=10.0, ge=0, le=600)
    client_max_size: int = Field(default=1_048_576, ge=1024, le=100 * 1_048_576)
    reuse_port: bool = False
    idle_timeout: float = Field(default=20.0, gt=0, le=3600)
    page_cache_seconds: float = Field(default=5.0, ge=0, le=300)


class DatabaseSettings(_Section):
    url: str = ""
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=200)
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    connect_deadline: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^postgres(ql)?://", value):
            raise ValueError("expected an empty string (embedded database) or a postgresql:// URL")
        return value


class StorageSettings(_Section):
    data_dir: Path = Path("data")


class MediaSettings(_Section):
    max_image_bytes: int = Field(default=16 * 1_048_576, ge=1024, le=100 * 1_048_576)
    max_image_pixels: int = Field(default=33_177_600, ge=1024, le=178_956_970)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    access_log: bool = True


class FederationSettings(_Section):
    enabled: bool = True
    allow_private_addresses: bool = False
    delivery_concurrency: int = Field(default=32, ge=1, le=1024)
    delivery_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    inbox_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    pause_failing_domain_after_days: float = Field(default=3.0, gt=0, le=365)
    probe_interval_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    retry_delay_scale: float = Field(default=1.0, gt=0, le=1000)
    request_timeout_seconds: float = Field(default=30.0, ge=1, le=300)


class JobsSettings(_Section):
    retention_days: float = Field(default=14.0, gt=0, le=3650)


class RewardsSettings(_Section):
    policy_version: int = Field(default=2, ge=1, le=2)
    points_like: int = Field(default=1, ge=0, le=1_000_000)
    points_announce: int = Field(default=2, ge=0, le=1_000_000)
    points_reply: int = Field(default=3, ge=0, le=1_000_000)
    daily_cap: int = Field(default=100, ge=0, le=1_000_000_000)
    receipt_max_age: int = Field(default=7 * 86400, ge=60)
    policy_file: str = ""
    checkpoint_interval: float = Field(default=2.0, gt=0, le=3600)
    witness_timeout: float = Field(default=10.0, gt=0, le=300)
    monitor_interval: float = Field(default=60.0, gt=0, le=86400)
    settlement_seconds: int = Field(default=7 * 86400, ge=0, le=366 * 86400)
    points_per_token: int = Field(default=10, ge=1, le=1_000_000_000)
    mint_threshold: int = Field(default=100, ge=0, le=1_000_000_000_000)
    token_expiry_days: int = Field(default=3 * 365, ge=1, le=100 * 366)
    tokens_enabled: bool = True
    endorsements_per_day: int = Field(default=10, ge=1, le=10_000)
    instance_daily_quota: int = Field(default=1000, ge=0, le=1_000_000_000)
    curation_percent: int = Field(default=50, ge=0, le=100)
    same_instance_percent: int = Field(default=50, ge=0, le=100)

    def policy_path(self, data_dir: Path) -> Path:
        """The tlog-policy file: `policy_file` (relative to data_dir) or data_dir/rewards-policy.txt."""
        return data_dir / (self.policy_file or "rewards-policy.txt")


class ApiSettings(_Section):
    password_grant: bool = True
    rate_limit_per_5min: int = Field(default=300, ge=0, le=1_000_000)
    login_failures_per_15min: int = Field(default=5, ge=1, le=10_000)
    signups_per_hour: int = Field(default=3, ge=1, le=10_000)
    trust_forwarded_for: bool = False


class MetricsSettings(_Section):
    enabled: bool = False
    token: str = ""  # empty: only a loopback peer may scrape /metrics

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str) -> str:
        value = value.strip()
        if value and (len(value) < 16 or any(c.isspace() for c in value)):
            raise ValueError("expected an empty string (loopback only) or a token of at least 16 characters "
                             "without spaces, such as the output of `openssl rand -hex 32`")
        return value


class Settings(_Section):
    instance: InstanceSettings = Field(default_factory=InstanceSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    rewards: RewardsSettings = Field(default_factory=RewardsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @property
    def base_url(self) -> str:
        """The public origin, e.g. `https://shop.example`."""
        return f"{self.instance.scheme}://{self.instance.domain}"

    @property
    def hostname(self) -> str:
        """The public host name without the port."""
        return self.instance.domain.rsplit(":", 1)[0] if ":" in self.instance.domain else self.instance.domain


def find_config_file(explicit: str | os.PathLike[str] | None, environ: dict[str, str]) -> Path | None:
    """The file to read: `--config`, else `FEDSERVER_CONFIG`, else `./config.toml` if present."""
    if explicit:
        return Path(explicit)
    if environ.get("FEDSERVER_CONFIG"):
        return Path(environ["FEDSERVER_CONFIG"])
    default = Path("config.toml")
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Collect `FEDSERVER_SECTION__KEY` variables into nested dicts (values parsed as TOML scalars)."""
    sections = Settings.model_fields
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in sections:
            raise ConfigError(f"{name}: unknown section [{section}]; known: {', '.join(sections)}")
        out.setdefault(section, {})[key] = _parse_env_value(raw)
    return out


def _parse_env_value(raw: str) -> Any:
    """Read `8001`, `true` or `["ko"]` as TOML values, anything else as a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _merge(base: dict[str, Any], over: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in over.items():
        current = merged.get(section)
        merged[section] = {**(current if isinstance(current, dict) else {}), **values}
    return merged


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = item["loc"]
        key = f"[{loc[0]}] {'.'.join(str(p) for p in loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]"
        env = f"FEDSERVER_{str(loc[0]).upper()}__{str(loc[1]).upper()}" if len(loc) > 1 else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{key}{f' ({env})' if env else ''}: {message}")
    return f"invalid configuration in {source}:\n  " + "\n  ".join(lines)


def load_settings(
    config_path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build settings from defaults, the config file and the environment; raise ConfigError on any problem."""
    environ = dict(os.environ if environ is None else environ)
    path = find_config_file(config_path, environ)
    data = _read_toml(path) if path else {}
    source = str(path) if path else "built-in defaults"
    overrides = _env_overrides(environ)
    if overrides:
        source += " + environment"
    try:
        settings = Settings.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    if path and not settings.storage.data_dir.is_absolute():
        # A relative data_dir in a config file means "next to that file".
        anchored = (path.parent / settings.storage.data_dir).resolve()
        settings = settings.model_copy(update={"storage": StorageSettings(data_dir=anchored)})
    return settings
