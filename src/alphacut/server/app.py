"""`create_app(settings)`: the FastAPI application, built without touching the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import AlphacutError, AuthenticationFailed, Overloaded
from ..models import MODELS, get_spec
from .cache import ResultCache
from .inference import Inference
from .metrics import Metrics
from .middleware import BodyLimitMiddleware, EdgeMiddleware, GuardMiddleware, error_body
from .redact import public_message
from .routes import STATIC_DIR, api_router, public_router
from .settings import ServerSettings
from .video import LazyJobs, video_router

__all__ = ["create_app"]

log = logging.getLogger("alphacut.server")


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app. The default model loads in the background at start-up: /healthz answers
    at once and /readyz turns 200 when the model is ready."""
    settings = settings or ServerSettings()
    metrics = Metrics()
    inference = Inference(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(_load_default_model(app))
        # Open the job store now, so that jobs a restart interrupted are settled at once.
        await asyncio.get_running_loop().run_in_executor(None, app.state.jobs.get)
        yield
        app.state.draining = True
        loader.cancel()
        await asyncio.get_running_loop().run_in_executor(None, inference.close)
        app.state.jobs.close()

    app = FastAPI(
        title="alphacut",
        version=__version__,
        description="Background removal with U²-Net-family models (rembg-compatible API).",
        lifespan=lifespan,
        docs_url=None,  # served below from the package, not a CDN
    )
    app.state.settings = settings
    app.state.inference = inference
    app.state.metrics = metrics
    app.state.cache = ResultCache(settings.cache_bytes)
    app.state.draining = False
    app.state.load_error = None
    app.state.jobs = LazyJobs(app.state, settings, metrics)
    app.include_router(api_router)
    app.include_router(video_router)
    app.include_router(public_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _serve_docs(app)
    _install_error_handlers(app, metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=[
                "ETag",
                "X-Alphacut-Cache",
                "X-Alphacut-Model",
                "X-Alphacut-Source",
                "X-Request-ID",
            ],
        )
    app.add_middleware(
        GuardMiddleware,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
        keyless=not settings.api_keys,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        paths={"/api/video": settings.video_max_upload_bytes},
        idle_seconds=settings.body_timeout_s,
    )
    app.add_middleware(
        EdgeMiddleware, metrics=metrics, is_draining=lambda: bool(app.state.draining)
    )
    return app


async def _load_default_model(app: FastAPI) -> None:
    inference: Inference = app.state.inference
    name = app.state.settings.default_model
    loop = asyncio.get_running_loop()
    try:
        # The operator chose this model, so fetching it at start-up is allowed.
        start_up = dataclasses.replace(inference.policy, download=True)
        if name in MODELS:
            await loop.run_in_executor(None, start_up.model_file, get_spec(name))
        session = await loop.run_in_executor(None, inference.session, name)
        log.info("default model ready: %s", session.description)
    except AlphacutError as exc:
        app.state.load_error = str(exc)
        log.error("default model %s could not be loaded: %s", name, exc)


def _json_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(kind, message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-py package's copy of it (5.x, which reads
    OpenAPI 3.1), so it works offline. Only its files are served; nothing of it is imported."""
    import importlib.util

    from fastapi.openapi.docs import get_swagger_ui_html

    from .._extras import require

    found = importlib.util.find_spec("swagger_ui")
    if found is None or found.origin is None:
        require("swagger_ui", "the server's /docs")  # raises MissingDependency, naming it
        raise AssertionError("unreachable")
    assets = Path(found.origin).parent / "static"
    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="alphacut API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def _install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    retry_after = str(app.state.settings.retry_after_s)

    @app.exception_handler(AlphacutError)
    async def alphacut_error(request: Request, exc: AlphacutError) -> Response:
        metrics.errors.labels(exc.kind).inc()
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = retry_after
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        if exc.http_status >= 500 and not isinstance(exc, Overloaded):
            log.error("%s on %s: %s", exc.kind, request.url.path, exc)
        return _json_error(exc.http_status, exc.kind, public_message(exc), headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        metrics.errors.labels(kind).inc()
        return _json_error(exc.status_code, kind, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        metrics.errors.labels("OptionsError").inc()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return _json_error(422, "OptionsError", problems or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        metrics.errors.labels("InternalError").inc()
        log.exception("unhandled error on %s", request.url.path)
        return _json_error(500, "InternalError", "internal error; the server log has the details")
