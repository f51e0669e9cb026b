"""A throwaway stand-in for the alphacut HTTP API, for developing and testing the web page.

It serves the real static folder and answers the same routes with fake behaviour, so the page
can be worked on without the model or the real app:

- ``POST /api/remove`` returns the uploaded image with its left half made transparent (or that
  alpha as a grey mask when ``only_mask`` is true), encoded as asked;
- a body that is not an image gets 415 JSON, a body over ``max_upload_bytes`` 413 JSON;
- a file whose name contains ``busy`` gets 503 with ``Retry-After``, ``slow`` sleeps 2 s first.

Run it by hand with ``.venv/bin/python tests/page_stub_server.py --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, ImageDraw, UnidentifiedImageError

STATIC = Path(__file__).resolve().parents[1] / "src" / "alphacut" / "server" / "static"
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
MODELS = [
    {
        "name": "u2netp",
        "description": "Small general-purpose U²-Net (4.6 MB)",
        "license": "Apache-2.0",
        "size_mb": 4.6,
        "available": True,
        "loaded": True,
    },
    {
        "name": "u2net",
        "description": "Full-size general-purpose U²-Net",
        "license": "Apache-2.0",
        "size_mb": 168.0,
        "available": False,
        "loaded": False,
    },
]


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"type": kind, "message": message}}, status, headers=headers)


def _flag(form: Any, name: str) -> bool:
    return str(form.get(name, "false")).lower() in {"true", "1", "on", "yes"}


def _cut_left_half(data: bytes, *, only_mask: bool, fmt: str) -> bytes:
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, image.width // 2 - 1, image.height), fill=0)
    out = alpha if only_mask else image
    if not only_mask:
        image.putalpha(alpha)
    if fmt == "jpeg":
        out = out.convert("L" if only_mask else "RGB")
    buffer = io.BytesIO()
    out.save(buffer, format=fmt.upper())
    return buffer.getvalue()


def create_stub_app(*, max_upload_bytes: int = 25 * 1024 * 1024) -> FastAPI:
    """The stub app; ``max_upload_bytes`` is what /api/config reports and /api/remove enforces."""
    app = FastAPI(title="alphacut page stub", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "max_upload_bytes": max_upload_bytes,
            "auth_required": False,
            "default_model": "u2netp",
            "formats": list(MEDIA_TYPES),
        }

    @app.get("/api/models")
    async def models() -> dict[str, Any]:
        return {"default": "u2netp", "models": MODELS}

    @app.post("/api/remove")
    async def remove(request: Request) -> Response:
        length = int(request.headers.get("content-length") or 0)
        if length > max_upload_bytes:
            return _error(413, "ImageTooLarge", f"upload: over the {max_upload_bytes}-byte limit")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(422, "OptionsError", "the multipart field 'file' is missing")
        name = upload.filename or "upload"
        if "busy" in name:
            return _error(503, "Overloaded", "all workers are busy", {"Retry-After": "3"})
        if "slow" in name:
            await asyncio.sleep(2)
        fmt = str(form.get("format", "png"))
        if fmt not in MEDIA_TYPES:
            return _error(422, "OptionsError", f"format: {fmt!r} is not one of png, webp, jpeg")
        data = await upload.read()
        try:
            body = _cut_left_half(data, only_mask=_flag(form, "only_mask"), fmt=fmt)
        except (UnidentifiedImageError, OSError):
            return _error(415, "UnsupportedImage", "upload: not an image the stub can read")
        return Response(body, media_type=MEDIA_TYPES[fmt])

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-upload-bytes", type=int, default=25 * 1024 * 1024)
    args = parser.parse_args()
    uvicorn.run(
        create_stub_app(max_upload_bytes=args.max_upload_bytes), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
