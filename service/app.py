"""The app factory: settings read once, the model loaded once at startup into app.state."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from classifier import artifacts
from service.routes import router
from service.settings import Settings

log = logging.getLogger("uxcx.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the model is loaded and verified when the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.classifier = artifacts.load(settings.models_dir)
        except artifacts.ArtifactError as exc:
            log.error("uxcx refuses to start: %s", exc)
            raise
        # The model's many small objects never become garbage: keep the collector from walking them.
        gc.collect()
        gc.freeze()
        log.info("serving model %s from %s", app.state.classifier.version, settings.models_dir)
        yield

    app = FastAPI(title="uxcx", version="0.1.0", summary="UX issue, CX issue, both or neither.", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"])

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse(
                {"detail": f"request body is {length} bytes; the limit is {settings.max_body_bytes} (UXCX_MAX_BODY_BYTES)"},
                status_code=413,
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Keep pydantic's precise locations and messages, drop the echoed input.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    return app
