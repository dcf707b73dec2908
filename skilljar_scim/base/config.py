"""Settings: defaults < TOML file < SKILLJAR_SCIM_* environment < command-line flags.

The file is `--config`, else $SKILLJAR_SCIM_CONFIG, else ./scim.toml (optional).
Environment variables are named SKILLJAR_SCIM_<SECTION>_<KEY>, e.g. SKILLJAR_SCIM_SERVER_PORT; any
other SKILLJAR_SCIM_* name is an error, except SKILLJAR_SCIM_CONFIG and the test suite's
SKILLJAR_SCIM_TEST_DATABASE_URL.
Relative paths in the file are resolved against the file's folder; relative paths from
the environment or flags against the current folder.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
import sys
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlparse

from skilljar_scim.base.errors import ConfigError

ENV_PREFIX = "SKILLJAR_SCIM_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
# Variables with the prefix that are not settings: the settings file, and the test suite's database.
NOT_SETTINGS = (CONFIG_ENV, ENV_PREFIX + "TEST_DATABASE_URL")
DEFAULT_CONFIG_NAME = "scim.toml"
SQLITE_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """Return the file a sqlite:/// database URL names, or None for another kind of database."""
    return Path(url[len(SQLITE_PREFIX):]) if url.startswith(SQLITE_PREFIX) else None


def _path(default: str) -> Any:
    return field(default=default, metadata={"path": True})


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = _path("sqlite:///scim.db")
    busy_timeout_ms: int = 5000
    prepared_statements: bool = True  # PostgreSQL: off behind a pooler that moves sessions (pgbouncer transaction mode)


@dataclass(frozen=True)
class SecuritySettings:
    secret_key_file: str = _path("scim.key")
    auth_failures_per_minute: int = 30  # per client address; 0 disables
    token_failures_per_minute: int = 30  # per revoked or expired token; 0 disables
    trusted_proxies: int = 0  # proxies whose X-Forwarded-For entry names the client
    auth_failure_table_size: int = 10_000  # addresses and tokens the failure limiter tracks per process


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata={"range": (1, 65535)})
    base_path: str = "/scim/v2"
    public_base_url: str = ""
    workers: int = 0  # 0: one per CPU core (README "Serving model")
    threads: int = 2
    graceful_timeout: int = 30
    max_body_bytes: int = 1_048_576
    header_timeout: int = 10
    body_timeout: int = 30
    idle_timeout: int = 15
    max_connections: int = 1000
    max_request_line_bytes: int = 8192
    max_header_bytes: int = 32768
    certfile: str = _path("")
    keyfile: str = _path("")
    log_format: str = field(default="text", metadata={"choices": ("text", "json")})

    @property
    def worker_count(self) -> int:
        """Return the worker processes to run: `workers`, or one per CPU core when it is 0."""
        return self.workers or os.cpu_count() or 1

    @property
    def tls(self) -> bool:
        return bool(self.certfile or self.keyfile)
    # RFC 7644 §3.5.2: a PATCH answers 200 with the whole resource, or 204 with no body.
    group_patch_response: str = field(default="no-content", metadata={"choices": ("no-content", "resource")})


@dataclass(frozen=True)
class LimitsSettings:
    default_page_size: int = 100
    max_page_size: int = 1000
    max_filter_length: int = 4096
    max_filter_depth: int = 32
    max_patch_operations: int = 1000
    max_members_per_patch: int = 1000
    max_bulk_operations: int = 100
    max_bulk_payload_bytes: int = 1_048_576
    max_values_per_attribute: int = 100  # emails, phoneNumbers, addresses...; 0: no limit
    max_resource_bytes: int = 65_536  # a user's or group's stored JSON; 0: no limit
    request_deadline_seconds: int = 10  # then 503, transaction rolled back; 0: no deadline


@dataclass(frozen=True)
class WebhooksSettings:
    timeout_ms: int = 5000  # a receiver must answer within this, or the attempt counts as failed
    poll_interval_ms: int = 250  # how often an idle delivery worker looks for due deliveries
    batch_size: int = 100  # deliveries one worker claims at a time
    concurrency: int = 4  # deliveries one worker sends at once (to different users)
    lease_seconds: int = 60  # a claim older than this is another worker's again (a crashed worker)
    disable_after_hours: int = 72  # an endpoint failing continuously this long is disabled
    # How much lower `scim serve`'s delivery process runs in CPU priority (nice): provisioning first.
    niceness: int = field(default=10, metadata={"range": (0, 19)})


@dataclass(frozen=True)
class EventsSettings:
    retention_days: int = 90  # how long the events API keeps events; 0 keeps them for ever


DASHBOARD_ROLES = {
    "global-admin": "Everything in the dashboard, including every other role's areas.",
    "analytics-admin": "Analytics and reports for every course and learner.",
    "analytics-limited": "Analytics and reports, limited to the courses the user manages.",
    "announcements-admin": "Create and publish announcements to learners.",
    "api-admin": "Manage API credentials, webhooks and integrations.",
    "codes-admin": "Create and manage registration and access codes.",
    "course-management-admin": "Create, edit and publish every course and path.",
    "course-management-limited": "Edit the courses the user is assigned to, without publishing.",
    "live-training-admin": "Schedule and run live training sessions.",
    "organization-settings-admin": "Organisation settings: branding, domains, sign-on.",
}


@dataclass(frozen=True)
class RolesSettings:
    catalog: dict = field(default_factory=lambda: dict(DASHBOARD_ROLES))


@dataclass(frozen=True)
class Settings:
    """Every setting, grouped by TOML section; `config_file` is where the file layer came from."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    roles: RolesSettings = field(default_factory=RolesSettings)
    webhooks: WebhooksSettings = field(default_factory=WebhooksSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    config_file: Path | None = None

    @property
    def key_path(self) -> Path:
        return Path(self.security.secret_key_file)

    @property
    def sqlite_path(self) -> Path | None:
        """Return the SQLite file path, or None when the database is not SQLite."""
        return sqlite_file(self.database.url)


SECTIONS = {f.name: f.default_factory for f in fields(Settings) if f.name != "config_file"}


def config_path(flag: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """Return which settings file applies: the flag, else $SKILLJAR_SCIM_CONFIG, else ./scim.toml."""
    env = os.environ if env is None else env
    return Path(flag or env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load(
    config: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from defaults, the file, the environment and `overrides` ("section.key")."""
    env = os.environ if env is None else env
    path = config_path(config, env)
    explicit = bool(config or env.get(CONFIG_ENV))
    layers: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    _merge(layers, _default_paths(), base=Path.cwd(), source="defaults")
    file_used = _merge_file(layers, path, explicit)
    _merge(layers, _env_layer(env), base=Path.cwd(), source="environment")
    _merge(layers, _nest(overrides or {}), base=Path.cwd(), source="command line")
    built = {name: _build(name, values) for name, values in layers.items()}
    return Settings(**built, config_file=path.resolve() if file_used else None)


def _merge_file(layers: dict, path: Path, explicit: bool) -> bool:
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: settings file not found")
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from None
    _merge(layers, data, base=path.resolve().parent, source=str(path))
    _warn_if_shared_with_password(path, data)
    return True


def _warn_if_shared_with_password(path: Path, data: Mapping[str, Any]) -> None:
    """Say on stderr (one line) when a file holding a database password is readable by others."""
    url = data.get("database", {}).get("url")
    mode = stat.S_IMODE(path.stat().st_mode)
    if isinstance(url, str) and _has_password(url) and mode & 0o077:
        print(f"Warning: settings file {path} holds a database password and other users can read it "
              f"(mode {mode:o}): run `chmod 600 {path}`", file=sys.stderr)


# A PostgreSQL URL's query parameters that hold a secret (store/db.py redacts them).
URL_SECRET_PARAMETERS = ("password", "sslpassword")


def _has_password(url: str) -> bool:
    """Say whether a database URL holds a password: its own, or a PostgreSQL query's password=/sslpassword=."""
    try:
        parts = urlparse(url)
        return bool(parts.password) or any(value for key, value in parse_qsl(parts.query)
                                           if key in URL_SECRET_PARAMETERS)
    except ValueError:  # a malformed URL: opening the database reports it
        return False


def _merge(layers: dict, data: Mapping[str, Any], base: Path, source: str) -> None:
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in values.items():
            spec = _field(section, key, source)
            layers[section][key] = _check(spec, value, f"{section}.{key}", source, base)


def _field(section: str, key: str, source: str):
    spec = {f.name: f for f in fields(SECTIONS[section]())}.get(key)
    if spec is None:
        raise ConfigError(f"{source}: unknown setting '{section}.{key}'")
    return spec


def _check(spec, value: Any, name: str, source: str, base: Path) -> Any:
    """Coerce environment strings, check the type, resolve relative paths."""
    kind = type(spec.default) if spec.default is not MISSING else type(spec.default_factory())
    value = _CHECKS[kind](value, name, source)
    choices = spec.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{source}: '{name}' must be one of {', '.join(choices)}, got {value!r}")
    low, high = spec.metadata.get("range", (None, None))
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{source}: '{name}' must be {low}-{high}, got {value}")
    return _resolve_path(value, base) if spec.metadata.get("path") else value


def _check_int(value: Any, name: str, source: str) -> int:
    if isinstance(value, str) and source == "environment":
        value = _int_from_env(value, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: '{name}' must be an integer, got {value!r}")
    if value < 0:
        raise ConfigError(f"{source}: '{name}' must not be negative, got {value}")
    return value


def _check_str(value: Any, name: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: '{name}' must be a string, got {value!r}")
    return value


def _check_table(value: Any, name: str, source: str) -> dict[str, str]:
    """Accept a table of name = "text" (a JSON object in the environment)."""
    if isinstance(value, str) and source == "environment":
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"environment: '{name}' must be a JSON object") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{source}: '{name}' must be a table of name = \"description\" strings")
    return dict(value)


def _check_bool(value: Any, name: str, source: str) -> bool:
    """Accept true or false (in the environment also 1/0, yes/no, on/off)."""
    if isinstance(value, str) and source == "environment":
        value = _BOOLEAN_WORDS.get(value.strip().lower(), value)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: '{name}' must be true or false, got {value!r}")
    return value


_BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
_CHECKS = {int: _check_int, str: _check_str, dict: _check_table, bool: _check_bool}


def _int_from_env(value: str, name: str) -> Any:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment: '{name}' must be an integer, got {value!r}") from None


def _resolve_path(value: str, base: Path) -> str:
    """Make a relative file path (or sqlite:/// URL path) absolute against `base`."""
    if value.startswith(SQLITE_PREFIX):
        return SQLITE_PREFIX + str(base / value[len(SQLITE_PREFIX):])
    if "://" in value or not value:
        return value
    return str(base / Path(value).expanduser())


def _default_paths() -> dict[str, dict[str, str]]:
    """Return the default values of path settings, so they resolve against the current folder."""
    return {
        section: {f.name: f.default for f in fields(factory()) if f.metadata.get("path")}
        for section, factory in SECTIONS.items()
    }


def _env_layer(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Read SKILLJAR_SCIM_<SECTION>_<KEY>; any other SKILLJAR_SCIM_* name is a mistake, refused."""
    known = {f"{ENV_PREFIX}{section}_{spec.name}".upper(): (section, spec.name)
             for section, factory in SECTIONS.items() for spec in fields(factory())}
    layer: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if name in known:
            section, key = known[name]
            layer.setdefault(section, {})[key] = value
        elif name.startswith(ENV_PREFIX) and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, [*known, *NOT_SETTINGS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"environment: unknown variable {name}{hint}; settings are {ENV_PREFIX}<SECTION>_<KEY>")
    return layer


def _nest(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in flat.items():
        if value is not None:
            section, _, key = dotted.partition(".")
            nested.setdefault(section, {})[key] = value
    return nested


def _build(section: str, values: dict[str, Any]):
    return replace(SECTIONS[section](), **values)
