"""HTTP routes. rembg's server parameters (`model`, `a`, `af`, `ab`, `ae`, `om`, `ppm`, `bgc`)
work unchanged, beside readable aliases (`only_mask`, `bgcolor`, `format`, …)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile

from .. import __version__
from ..errors import AuthenticationFailed, InputError, Overloaded, UnsupportedImage
from ..imagefile import SUFFIXES
from ..options import OUTPUT_FORMATS, SETTINGS, RemoveOptions, options_from_params
from .cache import result_key, upload_key
from .inference import Inference, Result
from .settings import ServerSettings

__all__ = ["STATIC_DIR", "api_router", "public_router"]

STATIC_DIR = Path(__file__).parent / "static"
# A server path is not a client's to choose: painted hints come as an upload part (POST /api/refine).
_HTTP_EXCLUDED = frozenset({"background_image", "hints"})
_IGNORED = ("extras",)  # accepted from rembg clients, meaningless here
_SEND_AN_IMAGE = (
    "send the image's bytes as the request body (curl --data-binary @photo.jpg; plain -d "
    "strips line breaks and corrupts it) or as multipart field 'file' (curl -F file=@photo.jpg)"
)


def _settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def require_api_key(request: Request) -> None:
    """With API keys, refuse a request without a valid one (401); note the key's scope in
    `request.state.scope`, which every upload, cached result and job is kept under, so no
    key reaches another's. Without keys, every client shares one scope ("")."""
    request.state.scope = ""
    keys = _settings(request).api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # Headers arrive as latin-1 text: compare the bytes sent with each key's UTF-8 bytes, in
    # constant time (a non-ASCII token is just a wrong one).
    sent = token.strip().encode("latin-1", "replace")
    matched = [k for k in keys if hmac.compare_digest(sent, k.encode())]
    if scheme.lower() != "bearer" or not matched:
        raise AuthenticationFailed("missing or invalid API key (send Authorization: Bearer <key>)")
    request.state.scope = key_scope(matched[0])


def key_scope(key: str) -> str:
    """What a key's data is kept under: a digest, so no key is stored in a cache or table."""
    return hashlib.sha256(b"alphacut scope\0" + key.encode()).hexdigest()[:32]


def request_scope(request: Request) -> str:
    return str(getattr(request.state, "scope", ""))


def _option_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "The image."},
        "model": {"type": "string", "description": "Model name; see GET /api/models."},
    }
    for setting in SETTINGS:
        if setting.name in _HTTP_EXCLUDED:
            continue
        kind = (
            "boolean"
            if isinstance(setting.default, bool)
            else ("integer" if isinstance(setting.default, int) else "string")
        )
        aliases = f" Aliases: {', '.join(setting.aliases)}." if setting.aliases else ""
        properties[setting.name] = {"type": kind, "description": setting.help + aliases}
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": ["file"]}
                },
                "image/*": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The image as multipart field `file`, or as the raw body under any "
            "other Content-Type (image/*, application/octet-stream, or the "
            "application/x-www-form-urlencoded that `curl --data-binary` sends). Options may "
            "also go in the query string.",
        },
        "responses": {
            "200": {
                "content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}},
                "description": "The cutout or mask.",
            }
        },
    }


api_router = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)])
public_router = APIRouter()


@api_router.post("/remove", openapi_extra=_option_schema(), response_class=Response)
async def remove_upload(request: Request) -> Response:
    """Remove the background of an uploaded image."""
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=2, max_fields=64)
        upload = form.get("file")
        params.update({k: v for k, v in form.items() if k != "file" and isinstance(v, str)})
        if not isinstance(upload, UploadFile):
            raise InputError("the multipart body has no file field named 'file'")
        data, name = await upload.read(), upload.filename or "upload"
        hints = form.get("hints")
        if isinstance(hints, UploadFile):  # painted hints: the same as POST /api/refine
            return await _refined(request, params, data, None, await hints.read(), name)
    else:
        # Any other body is the image itself, whatever it is labelled: `curl --data-binary
        # @photo.jpg` calls it application/x-www-form-urlencoded.
        data, name = await request.body(), "upload"
        if content_type.startswith("application/x-www-form-urlencoded"):
            try:
                return await _respond(request, data, params, name)
            except UnsupportedImage as exc:
                raise UnsupportedImage(f"{exc.reason}; {_SEND_AN_IMAGE}", source=name) from exc
    return await _respond(request, data, params, name)


@api_router.get("/remove", response_class=Response)
async def remove_from_url(request: Request, url: str) -> Response:
    """Fetch `url` and remove its background (only when the server runs with --allow-url)."""
    settings = _settings(request)
    if not settings.allow_url:
        from .urlfetch import UrlRefused

        raise UrlRefused("fetching images by URL is disabled on this server (see --allow-url)")
    from .urlfetch import FetchPolicy, fetch_image_bytes

    policy = FetchPolicy(
        max_bytes=settings.url_max_bytes,
        timeout_s=settings.url_timeout_s,
        allow_networks=settings.url_allow_networks,
    )
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, functools.partial(fetch_image_bytes, url, policy))
    params = {k: v for k, v in request.query_params.items() if k != "url"}
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "download"
    return await _respond(request, data, params, name)


def _model_and_options(
    request: Request, params: dict[str, str], data: bytes | None, name: str
) -> tuple[str, RemoveOptions]:
    """The model and options a request's parameters ask for; refuses an empty upload."""
    model = params.pop("model", None) or _settings(request).default_model
    for key in _IGNORED:
        params.pop(key, None)
    options = options_from_params(params, exclude=_HTTP_EXCLUDED)
    if data is not None and not data:
        raise InputError("the upload is empty (0 bytes)", source=name)
    return model, options


async def _respond(request: Request, data: bytes, params: dict[str, str], name: str) -> Response:
    state = request.app.state
    inference: Inference = state.inference
    model, options = _model_and_options(request, params, data, name)
    reference = upload_key(data)
    scope = request_scope(request)
    key = result_key(scope, reference, model, options)
    etag = f'"{key[:40]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": f'inline; filename="{_output_name(name, options.output_format)}"',
        "X-Alphacut-Model": model,
        "X-Alphacut-Source": reference,  # the reference POST /api/refine takes
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    cached = state.cache.get(key)
    if cached is not None:
        state.metrics.cache_hits.inc()
        return Response(
            cached[0], media_type=cached[1], headers={**headers, "X-Alphacut-Cache": "hit"}
        )
    state.metrics.cache_misses.inc()
    result: Result = await inference.remove(
        data, model, options, source=name, reference=reference, scope=scope
    )
    state.cache.put(key, result.data, result.media_type)
    state.metrics.cache_bytes.set(state.cache.size)
    return Response(
        result.data, media_type=result.media_type, headers={**headers, "X-Alphacut-Cache": "miss"}
    )


@api_router.post("/refine", response_class=Response)
async def refine_upload(request: Request) -> Response:
    """Remove the background with painted hints (multipart field `hints`: an RGBA or LA PNG
    at the image's size; white keep, black remove, grey edge, transparent no hint), for the
    image in field `file`, or for an earlier upload named by `ref` (the X-Alphacut-Source
    header /api/remove answered with). A stroke then costs a local matting solve: the
    upload's model mask and automatic refinement are kept. An unknown `ref` is a 404
    (UnknownSource): send the image again."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputError("send the hints (and the image or its ref) as multipart/form-data")
    form = await request.form(max_files=2, max_fields=64)
    params = dict(request.query_params)
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    hints, upload = form.get("hints"), form.get("file")
    if not isinstance(hints, UploadFile):
        raise InputError("the multipart body has no file field named 'hints'")
    reference = params.pop("ref", None)
    if (upload is None) == (reference is None):
        raise InputError("send the image as field 'file' or name an earlier upload with 'ref'")
    data = await upload.read() if isinstance(upload, UploadFile) else None
    name = (upload.filename if isinstance(upload, UploadFile) else None) or "upload"
    return await _refined(request, params, data, reference, await hints.read(), name)


async def _refined(
    request: Request,
    params: dict[str, str],
    data: bytes | None,
    reference: str | None,
    hints: bytes,
    name: str,
) -> Response:
    """The answer to a request with painted hints, by /api/refine or /api/remove."""
    model, options = _model_and_options(request, params, data, name)
    if options.refine is None:
        options = options.replace(refine="auto")
    inference: Inference = request.app.state.inference
    result = await inference.refine(
        data, reference, hints, model, options, name, request_scope(request)
    )
    return Response(
        result.data,
        media_type=result.media_type,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="{_output_name(name, options.output_format)}"',
            "X-Alphacut-Model": model,
            "X-Alphacut-Source": result.reference,
        },
    )


def _output_name(name: str, output_format: str) -> str:
    stem = Path(name).stem or "result"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:100]
    return safe + SUFFIXES[output_format]


@api_router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """Models this server offers: which are available locally and which are loaded."""
    inference: Inference = request.app.state.inference
    return {"default": _settings(request).default_model, "models": inference.describe_models()}


@public_router.get("/api/config")
async def config(request: Request) -> dict[str, Any]:
    """What a client needs to know before uploading."""
    settings = _settings(request)
    return {
        "version": __version__,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels,
        "auth_required": bool(settings.api_keys),
        "default_model": settings.default_model,
        "formats": list(OUTPUT_FORMATS),
        "url_fetch": settings.allow_url,
        "video": request.app.state.jobs.get() is not None,
        "video_max_upload_bytes": settings.video_max_upload_bytes,
    }


@public_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@public_router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the default model is loaded and the server is not shutting down."""
    settings = _settings(request)
    inference: Inference = request.app.state.inference
    if request.app.state.draining:
        raise Overloaded("server is shutting down")
    if not inference.is_loaded(settings.default_model):
        error = request.app.state.load_error
        detail = f": {error}" if error else ""
        raise Overloaded(f"default model {settings.default_model!r} is not loaded yet{detail}")
    return JSONResponse({"status": "ready", "model": settings.default_model})


@public_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    if not _settings(request).metrics_public:
        require_api_key(request)  # routes, statuses and error counts are the operator's
    state = request.app.state
    state.metrics.queue_depth.set(state.inference.queued)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@public_router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
