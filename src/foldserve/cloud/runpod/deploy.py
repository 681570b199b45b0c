"""``foldserve deploy runpod``: a network volume, a template and an endpoint, through RunPod's
REST API (https://rest.runpod.io/v1; ``FOLDSERVE_RUNPOD_REST_URL`` names another).

Three requests, in order (field names from RunPod's OpenAPI reference for ``POST
/networkvolumes``, ``POST /templates`` and ``POST /endpoints``):

1. ``POST /networkvolumes`` ``{name, size, dataCenterId}``: where the weights and the compile
   cache live (skipped with ``--volume-id``, which reads the volume instead, for its data centre).
2. ``POST /templates`` ``{name, imageName, isServerless, containerDiskInGb, volumeInGb, env}``:
   the worker image and its environment, ``PARAM_DIR=/runpod-volume`` among it.
3. ``POST /endpoints`` ``{name, templateId, networkVolumeId, gpuTypeIds, gpuCount,
   dataCenterIds, workersMin, workersMax, idleTimeout, executionTimeoutMs, scalerType,
   scalerValue, flashboot}``.

The API key goes in the ``Authorization: Bearer`` header only; a dry run shows the requests
with the key and secret-looking environment values replaced.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from foldserve.cloud.runpod.settings import VOLUME_MOUNT
from foldserve.config import KEY_VARIABLES, load_config, missing_key_fix
from foldserve.errors import InputError, RemoteError
from foldserve.remote import first_line

DEFAULT_REST_URL = "https://rest.runpod.io/v1"
REST_URL_VARIABLE = "FOLDSERVE_RUNPOD_REST_URL"
DEFAULT_GPU = "NVIDIA GeForce RTX 4090"
DEFAULT_DATACENTER = "EU-RO-1"
#: RunPod's default execution timeout is 600 s; five models on a large protein need more.
DEFAULT_EXECUTION_TIMEOUT = 3600
RUNPOD_DEFAULT_EXECUTION_TIMEOUT = 600
#: Weights (5.3 GB unpacked) and the compile cache, with room to spare.
DEFAULT_VOLUME_GB = 15
CONTAINER_DISK_GB = 20
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
_RUNPOD_SECRET_REFERENCE = re.compile(r"^\{\{\s*RUNPOD_SECRET_\w+\s*\}\}$")
_HIDDEN = "<hidden>"


@dataclass(frozen=True)
class DeployOptions:
    """What to deploy; checked on creation, errors naming the command-line flag."""

    image: str
    name: str = "foldserve"
    gpus: tuple[str, ...] = (DEFAULT_GPU,)
    datacenter: str = DEFAULT_DATACENTER
    volume_gb: int = DEFAULT_VOLUME_GB
    volume_id: str | None = None
    min_workers: int = 0
    max_workers: int = 3
    idle_timeout: int = 60
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(flag: str, problem: str, fix: str) -> InputError:
            return InputError(problem, where=flag, fix=fix)

        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise bad(
                "--image",
                f"{self.image!r} is not an image name",
                "e.g. ghcr.io/you/foldserve:0.1.0",
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,63}", self.name):
            raise bad(
                "--name", f"{self.name!r} is not a usable name", "use letters, digits, - and _"
            )
        if not self.gpus:
            raise bad("--gpu", "no GPU type given", f"give one or more, e.g. --gpu {DEFAULT_GPU!r}")
        if not 1 <= self.volume_gb <= 4000:
            raise bad("--volume-size", f"{self.volume_gb} GB is outside 1..4000", "give 15 to 4000")
        if not 0 <= self.min_workers <= self.max_workers:
            raise bad(
                "--min-workers",
                f"{self.min_workers} is not between 0 and --max-workers ({self.max_workers})",
                "give 0 to scale to zero, at most --max-workers",
            )
        if self.max_workers < 1:
            raise bad("--max-workers", f"{self.max_workers} workers", "give at least 1")
        if self.idle_timeout < 1:
            raise bad("--idle-timeout", f"{self.idle_timeout} s", "give at least 1 second")
        if self.execution_timeout < 60:
            raise bad(
                "--execution-timeout",
                f"{self.execution_timeout} s is shorter than a prediction takes",
                f"give seconds, e.g. {DEFAULT_EXECUTION_TIMEOUT} (RunPod's own default, "
                f"{RUNPOD_DEFAULT_EXECUTION_TIMEOUT}, is short for five models)",
            )
        if "PARAM_DIR" in self.env:
            raise bad(
                "--env",
                "PARAM_DIR is set by the deployment",
                f"leave it out: the worker keeps the weights on the volume at {VOLUME_MOUNT}",
            )

    def volume_request(self) -> dict[str, Any]:
        return {
            "name": f"{self.name}-weights",
            "size": self.volume_gb,
            "dataCenterId": self.datacenter,
        }

    def template_request(self, suffix: str) -> dict[str, Any]:
        """The template; ``suffix`` makes its name unique, as RunPod requires."""
        return {
            "name": f"{self.name}-{suffix}",
            "imageName": self.image,
            "isServerless": True,
            "containerDiskInGb": CONTAINER_DISK_GB,
            # Serverless workers get the endpoint's network volume, not a volume of their own.
            "volumeInGb": 0,
            "env": {"PARAM_DIR": str(VOLUME_MOUNT), **self.env},
        }

    def endpoint_request(self, template_id: str, volume_id: str, datacenter: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "templateId": template_id,
            "networkVolumeId": volume_id,
            "computeType": "GPU",
            "gpuTypeIds": list(self.gpus),
            "gpuCount": 1,
            # A network volume lives in one data centre; its workers must run there.
            "dataCenterIds": [datacenter],
            "workersMin": self.min_workers,
            "workersMax": self.max_workers,
            "idleTimeout": self.idle_timeout,
            "executionTimeoutMs": self.execution_timeout * 1000,
            "scalerType": "QUEUE_DELAY",
            "scalerValue": 4,
            "flashboot": True,
        }


@dataclass(frozen=True)
class Deployment:
    endpoint_id: str
    template_id: str
    volume_id: str
    datacenter: str
    volume_created: bool


def rest_url() -> str:
    return (os.environ.get(REST_URL_VARIABLE) or DEFAULT_REST_URL).rstrip("/")


def api_key(profile: str | None = None) -> str | None:
    """``RUNPOD_API_KEY``, else the key of ``profile``, else of the default profile."""
    from_env = os.environ.get(KEY_VARIABLES["runpod"])
    if from_env:
        return from_env
    config = load_config()
    name = profile or config.default_profile
    if profile is not None and profile not in config.profiles:
        raise InputError(
            f"unknown profile {profile!r}",
            where="--profile",
            fix=f"add [profiles.{profile}] to {config.path}",
        )
    chosen = config.profiles.get(name) if name else None
    return chosen.api_key if chosen is not None and chosen.endpoint_id is not None else None


class RunpodRest:
    """RunPod's REST API: JSON in, JSON out, one line for every failure."""

    def __init__(self, base_url: str, key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
        )

    def __enter__(self) -> RunpodRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            answer = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"{method} {self.base_url}{path} failed ({first_line(exc)})",
                fix=f"check the network, or {REST_URL_VARIABLE}",
            ) from exc
        if answer.status_code in (401, 403):
            raise RemoteError(
                f"RunPod refused the API key (HTTP {answer.status_code})",
                fix="check the key's permissions; " + missing_key_fix("runpod"),
            )
        try:
            reply = answer.json()
        except ValueError:
            reply = None
        if answer.is_error or not isinstance(reply, dict):
            raise RemoteError(
                f"{method} {path}: HTTP {answer.status_code}: {_message(reply, answer.text)}"
            )
        return reply


def deploy(options: DeployOptions, api: RunpodRest) -> Deployment:
    """Create (or reuse) the volume, then the template and the endpoint."""
    created: list[str] = []

    def step(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            reply = api.call(method, path, body)
        except RemoteError as exc:
            so_far = f" (already created: {'; '.join(created)})" if created else ""
            raise RemoteError(exc.problem + so_far, fix=exc.fix) from exc
        if not isinstance(reply.get("id"), str):
            raise RemoteError(f"{method} {path}: RunPod's answer has no id: {_clip(reply)}")
        return reply

    if options.volume_id is None:
        volume = step("POST", "/networkvolumes", options.volume_request())
        created.append(f"network volume {volume['id']} (reuse it with --volume-id {volume['id']})")
    else:
        volume = step("GET", f"/networkvolumes/{options.volume_id}")
    datacenter = str(volume.get("dataCenterId") or options.datacenter)
    template = step("POST", "/templates", options.template_request(secrets.token_hex(3)))
    created.append(f"template {template['id']}")
    endpoint = step(
        "POST", "/endpoints", options.endpoint_request(template["id"], volume["id"], datacenter)
    )
    return Deployment(
        endpoint_id=endpoint["id"],
        template_id=template["id"],
        volume_id=volume["id"],
        datacenter=datacenter,
        volume_created=options.volume_id is None,
    )


def dry_run(options: DeployOptions, base_url: str) -> str:
    """The requests :func:`deploy` would send, key and secrets hidden, ids as placeholders."""
    requests: list[tuple[str, str, dict[str, Any] | None]] = []
    if options.volume_id is None:
        requests.append(("POST", "/networkvolumes", options.volume_request()))
        volume_id, datacenter = "<id of the network volume>", options.datacenter
    else:
        requests.append(("GET", f"/networkvolumes/{options.volume_id}", None))
        volume_id, datacenter = options.volume_id, "<data centre of that volume>"
    template = options.template_request("<random suffix>")
    template["env"] = {name: _shown(name, value) for name, value in template["env"].items()}
    requests.append(("POST", "/templates", template))
    requests.append(
        (
            "POST",
            "/endpoints",
            options.endpoint_request("<id of the template>", volume_id, datacenter),
        )
    )
    lines = []
    for method, path, body in requests:
        lines.append(f"{method} {base_url}{path}")
        lines.append(f"Authorization: Bearer <{KEY_VARIABLES['runpod']}, not shown>")
        if body is not None:
            lines.append(json.dumps(body, indent=2))
        lines.append("")
    return "\n".join(lines)


def _shown(name: str, value: str) -> str:
    if _SECRET_NAME.search(name) and not _RUNPOD_SECRET_REFERENCE.match(value):
        return _HIDDEN
    return value


def _message(reply: Any, text: str) -> str:
    if isinstance(reply, dict):
        for key in ("error", "message", "detail"):
            if reply.get(key):
                return _clip(reply[key])
    return _clip(text) or "no message"


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return " ".join(text.split())[:300]
