"""The self-hosted endpoint's HTTP API: RunPod's serverless routes under ``/v2/{endpoint_id}``.

Request bodies are read as a stream and refused past their limit (10 MB for ``/run``, 20 MB
for ``/runsync``, as on RunPod), also when a gzip body would inflate past it. The MSA is parsed
at submission, so a bad file is refused with its line before it waits in the queue. Errors are
JSON ``{"error": "<where>: <what>. Fix: <how>", "field": "<where>"}``; a job store that cannot
be written (a full disk) answers 503 with ``Retry-After``, so clients wait and try again. The
OpenAPI document (``/openapi.json``) needs the key like every route; there are no ``/docs``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse

from foldserve._version import __version__
from foldserve.errors import (
    InputError,
    MsaError,
    NotFound,
    StoreFull,
    StoreUnavailable,
    TooLarge,
    Unauthorized,
)
from foldserve.fold.engine import Engines
from foldserve.jobs.ids import checked_file_name, checked_job_id
from foldserve.jobs.payload import inflate, unpack_msa
from foldserve.jobs.schema import (
    RUN_BODY_LIMIT,
    RUNSYNC_BODY_LIMIT,
    JobStatus,
    RunRequest,
    parse_run_request,
)
from foldserve.jobs.wire import json_body
from foldserve.outbound import OutboundPolicy
from foldserve.server import layout
from foldserve.server.auth import key_check
from foldserve.server.settings import ServeSettings
from foldserve.server.status import status_body
from foldserve.server.store import Job, JobStore, WorkerState

#: How long ``/runsync`` waits by default, and at most (RunPod's figures).
RUNSYNC_WAIT_MS = 90_000
RUNSYNC_MAX_WAIT_MS = 300_000
#: Seconds a client is told to wait when the job store cannot be written (503).
STORE_RETRY_AFTER_S = 30
#: ``/run`` and ``/runsync`` read their body themselves (streamed, size-capped); the OpenAPI
#: document describes it from the contract's model all the same.
_RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}},
    }
}


def create_app(store: JobStore, settings: ServeSettings, api_keys: tuple[str, ...]) -> FastAPI:
    """The API over ``store``; ``api_keys`` empty: no authentication (loopback only, see
    :func:`foldserve.server.auth.required_keys`)."""
    app = FastAPI(
        title="foldserve", version=__version__, openapi_url=None, docs_url=None, redoc_url=None
    )
    _install_error_handlers(app)

    def endpoint(endpoint_id: str) -> None:
        if endpoint_id != settings.endpoint_id:
            raise NotFound(
                f"no endpoint {endpoint_id[:64]!r} here",
                where="endpoint_id",
                fix=f"this server serves /v2/{settings.endpoint_id}",
            )

    router = APIRouter(
        prefix="/v2/{endpoint_id}", dependencies=[Depends(key_check(api_keys)), Depends(endpoint)]
    )

    def job_or_404(job_id: str) -> Job:
        job = store.get(checked_job_id(job_id))
        if job is None:
            raise _no_job(job_id)
        return job

    def accept(body: Any) -> Job:
        """Check all that can be checked now, then queue: refused here, not by a job that
        fails later (run off the event loop: it parses the MSA and resolves hosts)."""
        run = parse_run_request(body)
        # The workers' own refusal, here before the job is queued.
        Engines(settings.engines).check_served(run.input.engine, where="input.engine")
        urls = run.input.urls()
        _check_urls(settings.outbound, urls, run.webhook)
        if not any(where.endswith(".msa_url") for where, _ in urls):
            unpack_msa(run.input, limits=settings.msa_limits)  # a bad MSA names its line
        return store.submit(run.input, run.policy, run.webhook)

    async def submit(request: Request, limit: int) -> Job:
        return await run_in_threadpool(accept, await _json_body(request, limit))

    @router.post("/run", openapi_extra=_RUN_BODY)
    async def run(request: Request) -> dict[str, Any]:
        job = await submit(request, RUN_BODY_LIMIT)
        return {"id": job.id, "status": job.status.value}

    @router.post("/runsync", openapi_extra=_RUN_BODY)
    async def runsync(
        request: Request,
        wait: Annotated[int, Query(ge=0, le=RUNSYNC_MAX_WAIT_MS)] = RUNSYNC_WAIT_MS,
    ) -> dict[str, Any]:
        job = await submit(request, RUNSYNC_BODY_LIMIT)
        loop = asyncio.get_running_loop()
        until = loop.time() + wait / 1000
        while not job.status.finished and loop.time() < until:
            await asyncio.sleep(0.1)
            job = await run_in_threadpool(job_or_404, job.id)
        return status_body(job, str(request.base_url))

    @router.get("/status/{job_id}")
    def status(job_id: str, request: Request) -> dict[str, Any]:
        return status_body(job_or_404(job_id), str(request.base_url))

    @router.get("/stream/{job_id}")
    def stream(job_id: str, since: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
        """RunPod's stream: the events not yet handed out, each once. With ``?since=N`` (a
        foldserve extension) the events after N without handing any out, and ``cursor``, the
        N to ask with next."""
        chunk = store.stream(checked_job_id(job_id), since)
        if chunk is None:
            raise _no_job(job_id)
        body: dict[str, Any] = {
            "status": chunk.status.value,
            "stream": [{"output": event.to_wire()} for event in chunk.events],
        }
        if since is not None:
            body["cursor"] = chunk.cursor
        return body

    @router.post("/cancel/{job_id}")
    def cancel(job_id: str) -> dict[str, Any]:
        job_or_404(job_id)
        job = store.cancel(job_id)
        assert job is not None
        return {"id": job.id, "status": job.status.value}

    @router.post("/retry/{job_id}")
    def retry(job_id: str) -> dict[str, Any]:
        current = job_or_404(job_id)
        job = store.retry(job_id)
        if job is None:
            raise InputError(
                f"job {job_id} is {current.status.value}",
                where="id",
                fix="only FAILED or TIMED_OUT jobs can be retried",
            )
        return {"id": job.id, "status": job.status.value}

    @router.post("/purge-queue")
    def purge_queue() -> dict[str, Any]:
        return {"removed": store.purge_queue(), "status": "completed"}

    @router.get("/health")
    def health() -> dict[str, Any]:
        states = [w.state for w in store.workers()]
        return {
            "jobs": store.counts(),
            "workers": {
                "idle": states.count(WorkerState.IDLE),
                "running": states.count(WorkerState.RUNNING),
                "initializing": states.count(WorkerState.STARTING),
            },
        }

    @router.get("/results/{job_id}/{file_name}")
    def result_file(job_id: str, file_name: str) -> FileResponse:
        job = job_or_404(job_id)
        name = checked_file_name(file_name)
        path = layout.results_dir(settings.data_dir, job.id) / name
        listed = job.output.files if job.output is not None else {}
        if job.status != JobStatus.COMPLETED or name not in listed or not path.is_file():
            raise NotFound(
                f"job {job.id} has no file {name}", where="file", fix="see the job's output files"
            )
        return FileResponse(path, media_type=_media_type(name), filename=name)

    app.include_router(router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(key_check(api_keys))])
    def openapi() -> dict[str, Any]:
        return _openapi_document(app)

    return app


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    """The API's OpenAPI document, with the request body of ``/run`` from the job contract."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        body = RunRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        schemas["RunRequest"] = body
        app.openapi_schema = document
    return app.openapi_schema


def _check_urls(outbound: OutboundPolicy, urls: list[tuple[str, str]], webhook: str | None) -> None:
    """Refuse, naming the field, a URL the outbound policy would refuse (resolving its host):
    the input's (``(field, url)`` pairs) and the webhook."""
    for where, url in urls:
        outbound.check(url, where=where, allow_s3=True)
    if webhook is not None:
        outbound.check(webhook, where="webhook")


def _no_job(job_id: str) -> NotFound:
    return NotFound(
        f"no job {job_id}",
        where="id",
        fix="check the id; results are deleted after the server's retention period",
    )


async def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON, read no further than ``limit`` bytes (inflated, for gzip)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    return await run_in_threadpool(_decoded_json, bytes(body), limit, gzipped)


def _decoded_json(data: bytes, limit: int, gzipped: bool) -> Any:
    """The JSON in ``data``; whatever cannot be read (nesting deeper than Python's recursion
    limit, text that is not UTF-8, a number of over 4,300 digits) is a user error
    (:func:`foldserve.jobs.wire.json_body`)."""
    if gzipped:
        data = inflate(data, limit=limit, where="body")
    return json_body(
        data, fix='send {"input": {...}}; `foldserve jobs schema` prints the JSON Schema'
    )


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"request body over the {limit // 1_000_000} MB limit",
        where="body",
        fix="send the MSA gzip-compressed as msa_gz_b64, or reduce it with "
        "`foldserve msa filter --max-seqs 5632`; foldserve submit does both",
    )


#: The HTTP status of each user error, the first class that matches (subclasses first).
_STATUS_CODES: tuple[tuple[type[InputError], int], ...] = (
    (TooLarge, 413),
    (Unauthorized, 401),
    (NotFound, 404),
    (InputError, 400),
)


def _install_error_handlers(app: FastAPI) -> None:
    async def user_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputError)
        code = next(c for kind, c in _STATUS_CODES if isinstance(exc, kind))
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        # An MSA error's "where" is file:line; the field is the file part.
        field = exc.source if isinstance(exc, MsaError) else exc.where
        body = {"error": exc.one_line(), "field": field}
        return JSONResponse(body, status_code=code, headers=headers)

    async def bad_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        return JSONResponse(
            {"error": f"{where}: {error.get('msg')}", "field": where}, status_code=400
        )

    async def store_fault(_request: Request, exc: Exception) -> JSONResponse:
        # The store logged it (once per interval); the client is not told the server's paths.
        full = isinstance(exc, StoreFull)
        problem = "the server's disk is full" if full else "the server cannot use its job store now"
        body = {"error": f"{problem}. Fix: try again later; nothing was changed", "field": None}
        headers = {"Retry-After": str(STORE_RETRY_AFTER_S)}
        return JSONResponse(body, status_code=503, headers=headers)

    app.add_exception_handler(InputError, user_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(StoreUnavailable, store_fault)


def _media_type(name: str) -> str:
    suffix = Path(name).suffix
    return {
        ".json": "application/json",
        ".pdb": "chemical/x-pdb",
        ".cif": "chemical/x-mmcif",
    }.get(suffix, "text/plain")
