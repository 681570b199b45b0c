"""Endpoints, API keys and local state: flag, then environment, then the configuration file.

The file is ``~/.config/foldserve/config.toml`` (``$FOLDSERVE_CONFIG`` names another)::

    default_profile = "lab"
    [profiles.lab]
    url = "http://gpu-box:8000/v2/local"      # a self-hosted endpoint, or
    # endpoint_id = "abc123"                  # a RunPod endpoint
    api_key = "..."
    [serve]
    api_keys = ["key1", "key2"]               # keys `foldserve serve` accepts

Keys are never printed: :class:`Endpoint` and :class:`Profile` leave them out of their repr.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from foldserve.errors import InputError

EndpointKind = Literal["runpod", "url"]

RUNPOD_API = "https://api.runpod.ai/v2"
#: The environment variable holding the key, per kind of endpoint.
KEY_VARIABLES: dict[EndpointKind, str] = {"runpod": "RUNPOD_API_KEY", "url": "FOLDSERVE_API_KEY"}
SERVER_KEY_VARIABLE = "FOLDSERVE_API_KEY"
DEFAULT_ENDPOINT_ID = "local"
_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_PROFILE_KEYS = {"url", "endpoint_id", "api_key"}


@dataclass(frozen=True)
class Endpoint:
    """Where jobs go: ``{base_url}/run``, ``{base_url}/status/{id}``, ...

    ``label`` names it for people (the profile, else the URL); ``profile`` is the profile it
    came from, kept so a later shell resolves the same key again.
    """

    base_url: str
    api_key: str | None = field(repr=False)
    kind: EndpointKind
    label: str
    profile: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    url: str | None
    endpoint_id: str | None
    api_key: str | None = field(repr=False)
    line: int | None = None

    def endpoint(self) -> tuple[str, EndpointKind]:
        if self.endpoint_id is not None:
            return runpod_base(self.endpoint_id, where=f"profile {self.name}"), "runpod"
        assert self.url is not None
        return url_base(self.url, where=f"profile {self.name}"), "url"


@dataclass(frozen=True)
class Config:
    path: Path
    default_profile: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    serve_api_keys: tuple[str, ...] = field(default=(), repr=False)


def config_path() -> Path:
    explicit = os.environ.get("FOLDSERVE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "foldserve" / "config.toml"


def state_dir() -> Path:
    """Where foldserve keeps local state such as the records of submitted jobs."""
    explicit = os.environ.get("FOLDSERVE_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "foldserve"


def load_config(path: Path | None = None) -> Config:
    """Read the configuration file; a missing file is an empty configuration."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the configuration file ({exc})",
            where=str(path),
            fix="make it a readable UTF-8 TOML file, or point FOLDSERVE_CONFIG elsewhere",
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise InputError(
            f"not valid TOML: {reason}",
            where=f"{path}:{line.group(1)}" if line else str(path),
            fix='write key = "value" pairs under [profiles.NAME] and [serve] tables',
        ) from None
    return _parse_config(path, text, raw)


def _parse_config(path: Path, text: str, raw: dict[str, Any]) -> Config:
    def bad(problem: str, line: int | None, fix: str) -> InputError:
        return InputError(problem, where=f"{path}:{line}" if line else str(path), fix=fix)

    unknown = sorted(set(raw) - {"default_profile", "profiles", "serve"})
    if unknown:
        raise bad(
            f"unknown setting {unknown[0]!r}",
            _line_of(text, rf"^[ \t]*\[?[ \t]*{re.escape(unknown[0])}\b"),
            "use default_profile, [profiles.NAME] and [serve]",
        )
    tables = raw.get("profiles", {})
    if not isinstance(tables, dict):
        raise bad(
            "profiles must be tables", _line_of(text, r"^[ \t]*profiles\b"), "[profiles.NAME]"
        )
    profiles = {}
    for name, table in tables.items():
        line = _line_of(text, rf"^[ \t]*\[[ \t]*profiles\.\"?{re.escape(name)}\"?[ \t]*\]")
        if not isinstance(table, dict):
            raise bad(f"profile {name!r} is not a table", line, f"write [profiles.{name}]")
        extra = sorted(set(table) - _PROFILE_KEYS)
        if extra:
            raise bad(
                f"profile {name!r} has unknown setting {extra[0]!r}",
                line,
                "a profile holds url or endpoint_id, and api_key",
            )
        values = {key: table.get(key) for key in _PROFILE_KEYS}
        for key, value in values.items():
            if value is not None and not (isinstance(value, str) and value):
                raise bad(f"profile {name!r}: {key} must be a non-empty string", line, "quote it")
        if (values["url"] is None) == (values["endpoint_id"] is None):
            raise bad(
                f"profile {name!r} needs exactly one of url and endpoint_id",
                line,
                'give url = "http://host:8000/v2/local" or endpoint_id = "<RunPod id>"',
            )
        profile = Profile(name, values["url"], values["endpoint_id"], values["api_key"], line)
        profile.endpoint()  # checks the URL or the endpoint id now, not at first use
        profiles[name] = profile
    default = raw.get("default_profile")
    default_line = _line_of(text, r"^[ \t]*default_profile\b")
    if default is not None and not isinstance(default, str):
        raise bad("default_profile must be a string", default_line, "name a profile")
    if default is not None and default not in profiles:
        raise bad(
            f"default_profile {default!r} is not defined",
            default_line,
            f"add [profiles.{default}] or name one of: {', '.join(profiles) or '(none yet)'}",
        )
    serve = raw.get("serve", {})
    keys = serve.get("api_keys", []) if isinstance(serve, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise bad(
            "[serve] api_keys must be a list of non-empty strings",
            _line_of(text, r"^[ \t]*api_keys\b") or _line_of(text, r"^[ \t]*\[[ \t]*serve[ \t]*\]"),
            'write api_keys = ["a-long-random-key"]',
        )
    return Config(path, default, profiles, tuple(keys))


def _line_of(text: str, pattern: str) -> int | None:
    """The first line matching ``pattern``: tomllib reports lines only for syntax errors."""
    found = re.search(pattern, text, flags=re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else None


def runpod_base(endpoint_id: str, *, where: str = "--endpoint-id") -> str:
    if not _ENDPOINT_ID.fullmatch(endpoint_id):
        raise InputError(
            f"{endpoint_id!r} is not a RunPod endpoint id",
            where=where,
            fix="copy the id from the RunPod console (letters, digits, - and _)",
        )
    return f"{RUNPOD_API}/{endpoint_id}"


def url_base(url: str, *, where: str = "--url") -> str:
    """A self-hosted endpoint's base: ``http://host:8000`` becomes ``http://host:8000/v2/local``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"{url!r} is not an http(s) URL",
            where=where,
            fix="give e.g. http://gpu-box:8000 or http://gpu-box:8000/v2/local",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError(
            "the URL may not carry a user, a password, a query or a fragment",
            where=where,
            fix="give scheme://host:port[/v2/ENDPOINT]; keys go in FOLDSERVE_API_KEY or the config",
        )
    path = parts.path.rstrip("/")
    if "/v2/" not in path + "/":
        path = f"{path}/v2/{DEFAULT_ENDPOINT_ID}"
    return f"{parts.scheme}://{parts.netloc}{path}"


def resolve_endpoint(
    url: str | None = None,
    endpoint_id: str | None = None,
    profile: str | None = None,
    api_key: str | None = None,
) -> Endpoint:
    """The endpoint the user means, with its key.

    The endpoint: ``url`` (self-hosted) or ``endpoint_id`` (RunPod), else ``profile``, else the
    configuration's ``default_profile``. The key: ``api_key``, else the key of a profile named
    explicitly, else the environment (``RUNPOD_API_KEY`` / ``FOLDSERVE_API_KEY``), else a
    profile for the same endpoint. No key at all is allowed (a loopback ``--no-auth`` server).
    """
    if url is not None and endpoint_id is not None:
        raise InputError(
            "both --url and --endpoint-id given",
            where="--url",
            fix="give --url for a self-hosted endpoint or --endpoint-id for RunPod, not both",
        )
    config = load_config()
    named = _profile(config, profile) if profile is not None else None
    kind: EndpointKind
    if endpoint_id is not None:
        base, kind = runpod_base(endpoint_id), "runpod"
    elif url is not None:
        base, kind = url_base(url), "url"
    else:
        named = named or (
            _profile(config, config.default_profile) if config.default_profile else None
        )
        if named is None:
            raise InputError(
                "no endpoint given",
                where="--endpoint-id",
                fix=(
                    "give --endpoint-id ID (RunPod), --url URL (self-hosted) or --profile NAME, "
                    f"or set default_profile in {config.path}"
                ),
            )
        base, kind = named.endpoint()
    return endpoint_at(base, kind, profile=named.name if named else None, api_key=api_key)


def endpoint_at(
    base_url: str,
    kind: EndpointKind,
    *,
    profile: str | None = None,
    api_key: str | None = None,
    config: Config | None = None,
) -> Endpoint:
    """The endpoint at ``base_url`` with its key resolved as :func:`resolve_endpoint` does."""
    config = config or load_config()
    named = config.profiles.get(profile) if profile is not None else None
    key = api_key or (named.api_key if named else None) or os.environ.get(KEY_VARIABLES[kind])
    if not key:
        matching = sorted(config.profiles.values(), key=lambda p: p.name != config.default_profile)
        key = next((p.api_key for p in matching if p.endpoint() == (base_url, kind)), None)
    return Endpoint(base_url, key or None, kind, label=profile or base_url, profile=profile)


def _profile(config: Config, name: str) -> Profile:
    try:
        return config.profiles[name]
    except KeyError:
        known = ", ".join(config.profiles) or "none defined"
        raise InputError(
            f"unknown profile {name!r} (known: {known})",
            where="--profile",
            fix=f"add [profiles.{name}] to {config.path}",
        ) from None


def server_api_keys() -> tuple[str, ...]:
    """The keys a self-hosted server accepts: ``$FOLDSERVE_API_KEY`` and ``[serve] api_keys``."""
    from_env = os.environ.get(SERVER_KEY_VARIABLE)
    keys = ([from_env] if from_env else []) + list(load_config().serve_api_keys)
    return tuple(dict.fromkeys(keys))


def missing_key_fix(kind: EndpointKind) -> str:
    """How to give the key for an endpoint of ``kind``."""
    return (
        f"export {KEY_VARIABLES[kind]}=<key>, or add api_key to the endpoint's profile "
        f"in {config_path()}"
    )
