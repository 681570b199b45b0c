"""The Serve application of the Ray backend: how its replicas are placed, scaled and stopped.

One application per endpoint (``foldserve-ENDPOINT_ID``), with one deployment of
:class:`~foldserve.server.ray.replica.FoldReplica`. Its name ends in a fingerprint of what the
replicas are started with, because Serve replaces every replica on each ``serve.run`` from a new
driver: a restarted API process whose fingerprint matches the running deployment takes a handle
to it instead, so its warm replicas stay warm.

Serve's HTTP proxy is disabled: the API process stays in front, with the RunPod-compatible
routes and the job store.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from foldserve._version import __version__
from foldserve.errors import InputError
from foldserve.jobs.failures import first_line
from foldserve.jobs.input import MAX_POLICY_MS
from foldserve.outbound import OutboundSettings
from foldserve.server.ray.replica import FoldReplica, ReplicaCannotStart
from foldserve.server.settings import ServeSettings

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

log = logging.getLogger("foldserve.ray")

#: How often replicas and handles report their load (Ray's default: 10 s), and the window the
#: autoscaler averages it over (30 s). Jobs take minutes: a 15 s window reacts to a new job
#: within seconds and is still not jumpy (see :func:`look_back_period` for shorter ones). Serve
#: reads the intervals from the environment of the processes that report.
METRICS_INTERVAL_S = 2.0
LOOK_BACK_PERIOD_S = 15.0
#: How long the cluster's address may take to accept a connection.
CONNECT_TIMEOUT_S = 5.0
_METRICS_VARIABLES = (
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
)

#: The settings a replica works with: a change to any of them needs fresh replicas.
_REPLICA_FIELDS = {
    "endpoint_id",
    "params_dir",
    "engines",
    "precision",
    "inline_limit_mb",
    "max_msa_rows",
    "max_query_length",
    "gpus_per_replica",
    "min_replicas",
    "max_replicas",
    "upscale_delay",
    "downscale_delay",
    "stop_grace",
    *OutboundSettings.model_fields,
}


@dataclass(frozen=True)
class ServeApp:
    """Where the endpoint's replicas live in Serve."""

    app: str
    deployment: str


def serve_app(settings: ServeSettings) -> ServeApp:
    fields = settings.model_dump(mode="json", include=_REPLICA_FIELDS)
    identity = json.dumps({"foldserve": __version__, **fields}, sort_keys=True)
    fingerprint = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return ServeApp(app=f"foldserve-{settings.endpoint_id}", deployment=f"fold-{fingerprint}")


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """``@serve.deployment``'s arguments.

    One request per replica (one prediction per device), scaled on ongoing requests, queued ones
    included, so each waiting job asks for a replica, down to ``min_replicas`` (0: none when
    idle). A replica being scaled down or replaced finishes its job first: the graceful shutdown
    outlasts the longest execution timeout a job may have (the API cancels any job past its own
    deadline), where Serve's default (20 s) would kill a prediction.
    """
    return {
        "ray_actor_options": {
            "num_gpus": settings.gpus_per_replica,
            "runtime_env": {"env_vars": _metrics_environment()},
        },
        "max_ongoing_requests": 1,
        "autoscaling_config": {
            "min_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": 1,
            "upscale_delay_s": settings.upscale_delay,
            "downscale_delay_s": settings.downscale_delay,
            "look_back_period_s": look_back_period(settings.downscale_delay),
        },
        "graceful_shutdown_timeout_s": MAX_POLICY_MS / 1000 + settings.stop_grace,
    }


def look_back_period(downscale_delay: float) -> float:
    """The window Serve averages each replica's load over: :data:`LOOK_BACK_PERIOD_S`, or the
    downscale delay when that is shorter, but never less than one report of the load.

    A job that has just finished stays in the average for the whole window, so with a 15 s
    window ``--downscale-delay 1`` would let an idle replica go after about 16 s, not 1 s."""
    return max(METRICS_INTERVAL_S, min(LOOK_BACK_PERIOD_S, downscale_delay))


def _metrics_environment() -> dict[str, str]:
    return dict.fromkeys(_METRICS_VARIABLES, f"{METRICS_INTERVAL_S:g}")


def connect(address: str | None) -> str:
    """Join the cluster at ``address``, or start one on this machine (loopback only); return
    the address. Ray's usage statistics stay off unless the environment turns them on."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    for name, value in _metrics_environment().items():  # this process's handle reports too
        os.environ.setdefault(name, value)
    host, port = _host_and_port(address)
    if address is None or (host is not None and ipaddress.ip_address(host).is_loopback):
        # Read when Ray is imported: a cluster of this machine alone stays on 127.0.0.1 (Ray
        # would swap a loopback address for the machine's own).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        from ray import serve  # noqa: F401 - Serve is the part of Ray this backend needs
    except ImportError as exc:
        raise InputError(
            f"Ray Serve is not installed here ({exc.name} is missing)",
            where="--backend",
            fix="install the extra: pip install 'foldserve[ray]'",
        ) from None
    if address is None:
        ray.init(
            include_dashboard=False,
            namespace="foldserve",
            logging_level=logging.WARNING,
            _node_ip_address="127.0.0.1",
        )
        return "a local cluster"
    problem = _unreachable(host, port) if host is not None and port is not None else None
    if problem is None:
        try:
            ray.init(address=address, namespace="foldserve", logging_level=logging.WARNING)
        except ConnectionError as exc:
            problem = first_line(exc)
    if problem is not None:
        raise InputError(
            f"no Ray cluster answers there ({problem})",
            where=f"--ray-address {address}",
            fix="start it first (ray start --head, or ray up), or leave --ray-address out "
            "to start one on this machine",
        )
    return str(ray.get_runtime_context().gcs_address)


def _host_and_port(address: str | None) -> tuple[str | None, int | None]:
    """The IP address and port of an ``IP:PORT`` address; Nones for ``auto``, a host name or
    ``ray://`` (Ray resolves those itself)."""
    if address is None or "://" in address:
        return None, None
    host, _, port = address.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host.strip("[]"), int(port)
    except ValueError:
        return None, None


def _unreachable(host: str, port: int) -> str | None:
    """Why nothing listens at ``host:port``, if so: Ray itself would retry for ever."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def deploy(settings: ServeSettings) -> DeploymentHandle[Any]:
    """The handle of the endpoint's deployment: the running one when it matches ``settings``,
    else a new one (Serve replaces the old one's replicas once their jobs end). Does not wait
    for replicas: with ``min_replicas`` 0 there are none until a job comes."""
    from ray import serve

    serve.start(proxy_location="Disabled")
    where = serve_app(settings)
    running = serve.status().applications.get(where.app)
    if running is not None and where.deployment in running.deployments:
        log.info("Serve application %s is running: its replicas are reused", where.app)
        return serve.get_deployment_handle(where.deployment, app_name=where.app)
    # Replicas get no webhook secret: it stays in the API process.
    replica_settings = settings.model_copy(update={"webhook_secret": None})
    deployment = serve.deployment(name=where.deployment, **deployment_options(settings))(
        FoldReplica
    )
    (handle,) = serve.run_many(
        [serve.RunTarget(deployment.bind(replica_settings), name=where.app, route_prefix=None)],
        wait_for_applications_running=False,
    )
    return handle


def deployment_problem(where: ServeApp) -> str | None:
    """Why the endpoint's replicas cannot start or keep failing, in one line; None when they
    are fine (or not yet deployed)."""
    from ray import serve
    from ray.serve._private.common import DeploymentStatus

    app = serve.status().applications.get(where.app)
    status = app.deployments.get(where.deployment) if app is not None else None
    if status is None or status.status not in (
        DeploymentStatus.UNHEALTHY,
        DeploymentStatus.DEPLOY_FAILED,
    ):
        return None
    cause = ReplicaCannotStart.__name__ + ": "
    for line in reversed(status.message.splitlines()):
        if cause in line:
            return line.split(cause, 1)[1].strip()
    return next(iter(status.message.strip().splitlines()), str(status.status.value))
