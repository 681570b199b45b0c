"""The HTTP side of SageMaker's inference container contract: ``GET /ping`` and
``POST /invocations``.

``/ping`` answers 200 once the engines are loaded, 503 before: SageMaker sends no request to
a container until it answers 200. ``/invocations`` answers 200 with the job's output JSON, or
an error as ``{"error": "<where>: <what>. Fix: <how>", "field": "<where>"}`` (the self-hosted
endpoint's form, the same one-line messages as every endpoint): 400 for input that cannot be
used, 500 for a job that failed otherwise, 503 before the engines are loaded or when SIGTERM
stopped the job. Asynchronous inference writes a 200's body to the output path and any other
to the failure path.

A second invocation while one runs is answered 429 at once rather than queued. An asynchronous
endpoint queues requests itself and, with ``MaxConcurrentInvocationsPerInstance=1`` (what
``foldserve deploy sagemaker`` sets), never sends a second one; so a 429 only comes of another
configuration, and says so in the failure path instead of holding a request that SageMaker
would time out.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from foldserve._version import __version__
from foldserve.cloud.sagemaker.container_jobs import Invocations, JobCrashed
from foldserve.errors import Cancelled, FoldserveError, InputError, MsaError


def create_app(invocations: Invocations) -> FastAPI:
    app = FastAPI(
        title="foldserve SageMaker container",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/ping")
    async def ping() -> Response:
        # async: answered on the event loop, never behind a job in the thread pool.
        return JSONResponse(
            {"warm": invocations.warm}, status_code=200 if invocations.warm else 503
        )

    @app.post("/invocations")
    async def invocation(request: Request) -> Response:
        if not invocations.warm:
            return _error(
                503, "the engines are still loading. Fix: wait until GET /ping answers 200"
            )
        if not invocations.claim():
            return _error(
                429,
                "a job is already running; this container runs one at a time. Fix: set "
                "MaxConcurrentInvocationsPerInstance=1 (foldserve deploy sagemaker does), or "
                "send it again once the running job is done",
            )
        try:
            body = await request.body()
            return Response(
                await run_in_threadpool(_output_json, invocations, body),
                media_type="application/json",
            )
        except InputError as exc:
            # An MSA error's "where" is file:line; the field is the file part.
            field = exc.source if isinstance(exc, MsaError) else exc.where
            return _error(400, exc.one_line(), field)
        except Cancelled:
            return _error(
                503,
                "the container was stopped (SIGTERM) while the job ran. Fix: send the job again",
            )
        except (FoldserveError, JobCrashed) as exc:
            return _error(500, str(exc))
        finally:
            invocations.release()

    return app


def _output_json(invocations: Invocations, body: bytes) -> bytes:
    """The job's output as JSON text, made in the thread that ran it: an output of hundreds of
    MB would otherwise hold up the event loop, and ``/ping`` with it."""
    return json.dumps(invocations.run(body).to_wire()).encode()


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)
