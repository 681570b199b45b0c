"""Endpoints, API keys and local state: flag, then environment, then the configuration file.

The file is ``~/.config/foldserve/config.toml`` (``$FOLDSERVE_CONFIG`` names another)::

    default_profile = "lab"
    [profiles.lab]
    url = "http://gpu-box:8000/v2/local"      # a self-hosted endpoint, or
    # endpoint_id = "abc123"                  # a RunPod endpoint
    api_key = "..."
    [profiles.aws]
    sagemaker_endpoint = "foldserve-async"    # a SageMaker asynchronous endpoint
    region = "eu-west-1"                      # optional: else AWS_REGION, ~/.aws/config
    s3_input = "s3://my-bucket/fold-inputs"   # optional: else under the endpoint's output path
    [serve]
    api_keys = ["key1", "key2"]               # keys `foldserve serve` accepts

Keys are never printed: :class:`Endpoint` and :class:`Profile` leave them out of their repr.
A SageMaker endpoint has no foldserve key: boto3 finds the AWS credentials as the AWS CLI does.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from foldserve.errors import InputError

EndpointKind = Literal["runpod", "url"]

RUNPOD_API = "https://api.runpod.ai/v2"
#: The environment variable holding the key, per kind of endpoint.
KEY_VARIABLES: dict[EndpointKind, str] = {"runpod": "RUNPOD_API_KEY", "url": "FOLDSERVE_API_KEY"}
SERVER_KEY_VARIABLE = "FOLDSERVE_API_KEY"
DEFAULT_ENDPOINT_ID = "local"
_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
#: What an API key may hold: printable ASCII without spaces (it travels in an HTTP header).
_API_KEY = re.compile(r"^[!-~]+$")
#: SageMaker's rule for endpoint names.
_SAGEMAKER_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
_S3_PREFIX = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[^\x00-\x1f]*)?$")


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

    def __post_init__(self) -> None:
        if self.api_key is not None:
            checked_api_key(self.api_key, where=f"the API key for {self.label}")


@dataclass(frozen=True)
class SageMakerEndpoint:
    """A SageMaker asynchronous endpoint: each job's input goes to S3 under ``s3_input``
    (``s3://bucket/prefix``; None: under the endpoint's own output path), in ``region`` (None:
    boto3's, from ``AWS_REGION`` or ``~/.aws/config``)."""

    name: str
    region: str | None = None
    s3_input: str | None = None
    profile: str | None = None

    @property
    def label(self) -> str:
        return f"SageMaker endpoint {self.name}"


#: Where jobs can go: a RunPod or self-hosted endpoint, or a SageMaker one.
Target = Endpoint | SageMakerEndpoint

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Invalid(ValueError):
    """A value a validator refuses, with the fix to show beside it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profile(_Table):
    """``[profiles.NAME]``: one endpoint, and perhaps its key (or, for SageMaker, its region
    and where inputs go)."""

    url: NonEmpty | None = None
    endpoint_id: NonEmpty | None = None
    api_key: NonEmpty | None = Field(default=None, repr=False)
    sagemaker_endpoint: NonEmpty | None = None
    region: NonEmpty | None = None
    s3_input: NonEmpty | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return url if url is None else _checked(url_base, url)

    @field_validator("endpoint_id")
    @classmethod
    def _endpoint_id(cls, endpoint_id: str | None) -> str | None:
        return endpoint_id if endpoint_id is None else _checked(runpod_base, endpoint_id)

    @field_validator("sagemaker_endpoint")
    @classmethod
    def _sagemaker_endpoint(cls, name: str | None) -> str | None:
        return name if name is None else _checked(sagemaker_name, name)

    @field_validator("region")
    @classmethod
    def _region(cls, region: str | None) -> str | None:
        return region if region is None else _checked(aws_region, region)

    @field_validator("s3_input")
    @classmethod
    def _s3_input(cls, prefix: str | None) -> str | None:
        return prefix if prefix is None else _checked(s3_prefix, prefix)

    @model_validator(mode="after")
    def _one_endpoint(self) -> Profile:
        if sum(x is not None for x in (self.url, self.endpoint_id, self.sagemaker_endpoint)) != 1:
            raise _Invalid(
                "needs exactly one of url and endpoint_id, or sagemaker_endpoint",
                'give url = "http://host:8000/v2/local", endpoint_id = "<RunPod id>" or '
                'sagemaker_endpoint = "<SageMaker endpoint name>"',
            )
        if self.sagemaker_endpoint is not None and self.api_key is not None:
            raise _Invalid(
                "api_key does not go with sagemaker_endpoint",
                "remove it: AWS credentials come from the AWS environment (aws configure)",
            )
        if self.sagemaker_endpoint is None and (self.region or self.s3_input) is not None:
            raise _Invalid(
                "region and s3_input go with sagemaker_endpoint",
                "remove them, or make the profile a SageMaker endpoint",
            )
        return self

    def endpoint(self) -> tuple[str, EndpointKind] | None:
        """The base URL and kind, None for a SageMaker endpoint; checked when the file was
        read, so this cannot fail."""
        if self.endpoint_id is not None:
            return runpod_base(self.endpoint_id), "runpod"
        if self.url is not None:
            return url_base(self.url), "url"
        return None


class Serve(_Table):
    """``[serve]``: settings of ``foldserve serve``."""

    api_keys: tuple[NonEmpty, ...] = Field(default=(), repr=False)


class Search(_Table):
    """``[search]``: where ``msa search``, ``predict --sequence`` and ``submit --sequence``
    search when given neither ``--db`` nor ``--server``: a ColabFold MMseqs2 server (a lab's
    own, or the public one), and the e-mail its terms ask for. The URL is checked when a
    search uses it, as a ``--server`` is."""

    server: NonEmpty | None = None
    email: NonEmpty | None = None


class Config(_Table):
    """The configuration file; :attr:`path` is where it was read from (or would be)."""

    profiles: dict[str, Profile] = Field(default_factory=dict)
    # After profiles, so that its check sees them.
    default_profile: str | None = None
    serve: Serve = Field(default_factory=Serve)
    search: Search = Field(default_factory=Search)
    _path: Path = PrivateAttr(default_factory=lambda: config_path())

    @field_validator("default_profile")
    @classmethod
    def _defined(cls, name: str | None, info: ValidationInfo) -> str | None:
        profiles = info.data.get("profiles")
        if name is not None and profiles is not None and name not in profiles:
            raise _Invalid(
                f"{name!r} is not defined",
                f"add [profiles.{name}] or name one of: {', '.join(profiles) or '(none yet)'}",
            )
        return name

    @property
    def path(self) -> Path:
        return self._path


def _checked(check: Callable[[str], str], value: str) -> str:
    """``value`` if ``check`` (:func:`url_base`, :func:`runpod_base` …) accepts it."""
    try:
        check(value)
    except InputError as exc:
        raise _Invalid(exc.problem, exc.fix) from None
    return value


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
        return _located(Config(), path)
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
            fix=_FIXES[""],
        ) from None
    try:
        return _located(Config.model_validate(raw), path)
    except ValidationError as exc:
        raise _one_line(exc.errors()[0], path, text) from None


def _located(config: Config, path: Path) -> Config:
    config._path = path
    return config


#: The fix shown for a wrong value, by the top-level setting it is under.
_FIXES = {
    "": 'write default_profile = "NAME", [profiles.NAME] tables and a [serve] table',
    "profiles": "a [profiles.NAME] table holds url or endpoint_id, and api_key; or "
    "sagemaker_endpoint, region and s3_input",
    "default_profile": 'name a profile: default_profile = "NAME"',
    "serve": 'write api_keys = ["a-long-random-key"] under [serve]',
}
#: What a value must be, by pydantic's error type.
_KINDS = {
    "string_type": "string",
    "string_too_short": "non-empty string",
    "dict_type": "table",
    "model_type": "table",
    "tuple_type": "list",
}


def _one_line(error: ErrorDetails, path: Path, text: str) -> InputError:
    """Pydantic's first complaint as one line: the setting's dotted key, what is wrong with
    it, ``file:line`` where the file spells it out, and a fix."""
    keys = [part for part in error["loc"] if isinstance(part, str)]
    name = ".".join(keys)
    refused = error.get("ctx", {}).get("error")
    fix = _FIXES[keys[0] if keys and keys[0] in _FIXES else ""]
    if isinstance(refused, _Invalid):
        problem, fix = f"{name}: {refused.problem}", refused.fix or fix
    elif error["type"] == "extra_forbidden":
        table = ".".join(keys[:-1])
        problem = f"unknown setting {keys[-1]!r}" + (f" in [{table}]" if table else "")
    elif error["type"] in _KINDS and isinstance(error["loc"][-1], int):
        problem = f"{name} must be a list of {_KINDS[error['type']]}s"
    elif error["type"] in _KINDS:
        problem = f"{name} must be a {_KINDS[error['type']]}"
    else:
        problem = f"{name}: {error['msg']}"
    line = _line_of(text, tuple(keys))
    return InputError(problem, where=f"{path}:{line}" if line else str(path), fix=fix)


_HEADER = re.compile(r"^\s*\[\[?([^\]]+)\]")
_KEY = re.compile(
    r"""^\s*((?:[\w-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[\w-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_KEY_PART = re.compile(r"""([\w-]+)|"([^"]*)"|'([^']*)'""")


def _line_of(text: str, keys: tuple[str, ...]) -> int | None:
    """The line that spells out the deepest part of ``keys``: a ``[table]`` header or a
    ``key = value`` under one (tomllib reports lines only for syntax errors)."""
    best, depth = None, 0
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        if header := _HEADER.match(line):
            table = _key_parts(header.group(1))
            found = table
        elif key := _KEY.match(line):
            found = table + _key_parts(key.group(1))
        else:
            continue
        if keys[: len(found)] == found and len(found) > depth:
            best, depth = number, len(found)
    return best


def _key_parts(key: str) -> tuple[str, ...]:
    return tuple("".join(groups) for groups in _KEY_PART.findall(key))


def runpod_base(endpoint_id: str, *, where: str = "--endpoint-id") -> str:
    if not _ENDPOINT_ID.fullmatch(endpoint_id):
        raise InputError(
            f"{endpoint_id!r} is not a RunPod endpoint id",
            where=where,
            fix="copy the id from the RunPod console (letters, digits, - and _)",
        )
    return f"{RUNPOD_API}/{endpoint_id}"


def sagemaker_name(name: str, *, where: str = "--sagemaker-endpoint") -> str:
    if not _SAGEMAKER_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a SageMaker endpoint name",
            where=where,
            fix="give the endpoint's name as the SageMaker console shows it (letters, digits "
            "and -, at most 63)",
        )
    return name


def aws_region(region: str, *, where: str = "--region") -> str:
    if not _AWS_REGION.fullmatch(region):
        raise InputError(
            f"{region!r} is not an AWS region", where=where, fix="give one like eu-west-1"
        )
    return region


def s3_prefix(uri: str, *, where: str = "--s3-input") -> str:
    """``s3://bucket/prefix`` without a trailing slash."""
    if not _S3_PREFIX.fullmatch(uri):
        raise InputError(
            f"{uri!r} is not an S3 location",
            where=where,
            fix="give s3://BUCKET or s3://BUCKET/PREFIX",
        )
    return uri.rstrip("/")


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
    if profile is not None:
        _profile(config, profile)  # an unknown name is an error, even beside --url
    kind: EndpointKind
    if endpoint_id is not None:
        base, kind = runpod_base(endpoint_id), "runpod"
    elif url is not None:
        base, kind = url_base(url), "url"
    else:
        profile = profile or config.default_profile
        if profile is None:
            raise InputError(
                "no endpoint given",
                where="--endpoint-id",
                fix=(
                    "give --endpoint-id ID (RunPod), --url URL (self-hosted) or --profile NAME, "
                    f"or set default_profile in {config.path}"
                ),
            )
        found = _profile(config, profile).endpoint()
        if found is None:
            raise InputError(
                f"profile {profile!r} is a SageMaker endpoint, which this cannot use",
                where="--profile",
                fix="name a RunPod or self-hosted endpoint: --endpoint-id, --url or its profile",
            )
        base, kind = found
    return endpoint_at(base, kind, profile=profile, api_key=api_key)


def resolve_target(
    url: str | None = None,
    endpoint_id: str | None = None,
    profile: str | None = None,
    *,
    sagemaker_endpoint: str | None = None,
    region: str | None = None,
    s3_input: str | None = None,
) -> Target:
    """The endpoint the user means, of any kind: as :func:`resolve_endpoint`, or a SageMaker
    endpoint named by ``sagemaker_endpoint`` or by the profile.

    A SageMaker endpoint's ``region`` and ``s3_input`` come from the flags, else from the
    profile named (by ``profile``, or as the default one when no endpoint is given).
    """
    flags = [
        flag
        for flag, value in (
            ("--url", url),
            ("--endpoint-id", endpoint_id),
            ("--sagemaker-endpoint", sagemaker_endpoint),
        )
        if value is not None
    ]
    if len(flags) > 1:
        raise InputError(
            f"both {flags[0]} and {flags[1]} given",
            where=flags[0],
            fix="give one endpoint: --url (self-hosted), --endpoint-id (RunPod) or "
            "--sagemaker-endpoint (SageMaker)",
        )
    config = load_config()
    name = profile if flags else profile or config.default_profile
    named = _profile(config, name) if name is not None else None
    if sagemaker_endpoint is not None or (
        not flags and named is not None and named.sagemaker_endpoint is not None
    ):
        if named is not None and named.sagemaker_endpoint is None:
            raise InputError(
                f"profile {name!r} is not a SageMaker endpoint",
                where="--profile",
                fix="leave out --profile, or name a profile with sagemaker_endpoint",
            )
        endpoint_name = sagemaker_endpoint or (named.sagemaker_endpoint if named else None)
        assert endpoint_name is not None
        return SageMakerEndpoint(
            sagemaker_name(endpoint_name),
            region=aws_region(region) if region else named.region if named else None,
            s3_input=s3_prefix(s3_input) if s3_input else named.s3_input if named else None,
            profile=name,
        )
    aws_flags = [f for f, value in (("--region", region), ("--s3-input", s3_input)) if value]
    if aws_flags:
        raise InputError(
            f"{aws_flags[0]} goes with a SageMaker endpoint",
            where=aws_flags[0],
            fix="give --sagemaker-endpoint NAME too, or leave it out",
        )
    if not flags and name is None:
        raise InputError(
            "no endpoint given",
            where="--endpoint-id",
            fix="give --endpoint-id ID (RunPod), --url URL (self-hosted), --sagemaker-endpoint "
            f"NAME (SageMaker) or --profile NAME, or set default_profile in {config.path}",
        )
    return resolve_endpoint(url, endpoint_id, profile)


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
        matching = sorted(
            config.profiles.items(), key=lambda item: item[0] != config.default_profile
        )
        key = next((p.api_key for _, p in matching if p.endpoint() == (base_url, kind)), None)
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
    config = load_config()
    if from_env:
        checked_api_key(from_env, where=SERVER_KEY_VARIABLE)
    for key in config.serve.api_keys:
        checked_api_key(key, where=f"[serve] api_keys in {config.path}")
    keys = ([from_env] if from_env else []) + list(config.serve.api_keys)
    return tuple(dict.fromkeys(keys))


def checked_api_key(key: str, *, where: str) -> str:
    """``key``, if it can travel in an ``Authorization`` header: printable ASCII, no spaces.

    The message never shows the key.
    """
    if not _API_KEY.match(key):
        raise InputError(
            "the API key holds a space, a control or a non-ASCII character, so it can never "
            "be sent in an HTTP header",
            where=where,
            fix="use a key of printable ASCII letters, digits and punctuation, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )
    return key


def missing_key_fix(kind: EndpointKind) -> str:
    """How to give the key for an endpoint of ``kind``."""
    return (
        f"export {KEY_VARIABLES[kind]}=<key>, or add api_key to the endpoint's profile "
        f"in {config_path()}"
    )
