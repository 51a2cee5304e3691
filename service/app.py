"""The app factory: settings read once; the model and the database opened when the app starts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from threadpoolctl import threadpool_limits

from classifier import artifacts
from service.limits_mw import BodyLimitMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.routes import router
from service.runtime import Runtime, load_warm
from service.security import KeyChecker, RateLimiter
from service.settings import Settings
from service.store import Store, make_engine, migrate

log = logging.getLogger("uxcx.service")


async def _reload_logged(runtime: Runtime, models_dir: Path) -> None:
    try:
        await runtime.reload(models_dir)
    except artifacts.ArtifactError as exc:
        log.error("reload refused, still serving %s: %s", runtime.loaded.version, exc)


async def _retry_records(runtime: Runtime, every: float = 0.5) -> None:
    """Write waiting predictions once the database is back, even if no request comes to trigger it."""
    while True:
        await asyncio.sleep(every)
        if runtime.recorder.pending:
            # In a thread: a locked SQLite file or an unreachable server must not stall the loop.
            await asyncio.to_thread(runtime.recorder.flush)


_SHAPES = ("ClassifyItem", "ClassifyBatch")
_OBJECT_NEEDED = (
    'the body must be a JSON object, sent with Content-Type: application/json: {"text": "..."} for one text '
    'or {"items": [{"text": "..."}, ...]} for a batch'
)


def _message(error: Any) -> str:
    if error.get("type") == "json_invalid":  # pydantic only says "JSON decode error"
        where = error.get("loc", ())[-1]
        return f"the body is not valid JSON: {(error.get('ctx') or {}).get('error', 'cannot decode')} at character {where}"
    return str(error.get("msg", ""))


def _one_shape(errors: list[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    """Classify takes one item or a batch; pydantic reports the body against both shapes. Keep the
    errors of the shape the client meant (a batch if it sent "items"), so each says what to fix."""
    if not any(len(e["loc"]) > 1 and e["loc"][0] == "body" and e["loc"][1] in _SHAPES for e in errors):
        return errors
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": _OBJECT_NEEDED, "type": "model_attributes_type"}]
    meant = "ClassifyBatch" if "items" in body else "ClassifyItem"
    return [{**e, "loc": ["body", *e["loc"][2:]]} for e in errors if len(e["loc"]) > 1 and e["loc"][1] == meant]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; at startup the model is verified and loaded and migrations are applied."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One BLAS thread per worker: requests are concurrent already, and BLAS's spinning helper
        # threads fought the event loop for the core (twice the CPU per batch, for nothing).
        threadpool_limits(settings.blas_threads)
        try:
            loaded = load_warm(settings.models_dir)
        except artifacts.ArtifactError as exc:
            log.error("uxcx refuses to start: %s", exc)
            raise
        engine = make_engine(settings.db_url)
        try:
            revision = migrate(engine)
        except SQLAlchemyError as exc:
            log.error("uxcx refuses to start: the database at %s cannot be prepared: %s", engine.url, exc)
            engine.dispose()
            raise
        runtime = Runtime(
            loaded, Store(engine), metrics, settings.store_text, settings.max_batch, settings.max_pending_records
        )
        app.state.runtime = runtime
        metrics.set_model(loaded.version)
        # The model's many small objects never become garbage: keep the collector from walking them.
        gc.collect()
        gc.freeze()
        runtime.batcher.start()
        retries = asyncio.create_task(_retry_records(runtime), name="uxcx-record-retry")
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            task = loop.create_task(_reload_logged(runtime, settings.models_dir))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        # SIGHUP reloads models/current in this process (with --workers N, uvicorn's parent takes
        # SIGHUP instead and replaces the workers one at a time).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        log.info(
            "serving model %s from %s; database %s at revision %s",
            loaded.version, settings.models_dir, engine.url.render_as_string(hide_password=True), revision,
        )
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            retries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retries
            await runtime.batcher.stop()
            await asyncio.to_thread(runtime.recorder.close)
            engine.dispose()

    app = FastAPI(
        title="uxcx",
        version="0.1.0",
        summary="Does customer feedback report a UX issue, a CX issue, both or neither?",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = KeyChecker(settings.api_keys)
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Keep pydantic's precise locations and messages, drop the echoed input.
        errors = [{"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": _one_shape(errors, exc.body)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's words for a body json cannot decode at all (most often: not UTF-8).
            detail = "the body cannot be read: send JSON encoded as UTF-8, with Content-Type: application/json"
            return JSONResponse({"detail": detail}, status_code=400)
        return await http_exception_handler(request, exc)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %s", type(exc).__name__)
        return JSONResponse({"detail": "the database is unavailable; try again shortly"}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log (uvicorn logs the exception); the client gets no internals.
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)

    return app
