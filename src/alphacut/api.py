"""rembg-compatible functions: switching is a one-line import change.

``from rembg import remove, new_session`` becomes ``from alphacut import remove,
new_session``; the arguments, their order and defaults, and the output pixels
are rembg's. The one deliberate difference: ``remove(data)`` without a session
uses u2netp, which works offline, and reuses one session instead of loading a
new one on every call.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import overload

import numpy as np
from PIL import Image

from .errors import InputError
from .imageio import decode, encode
from .models.registry import DEFAULT_MODEL
from .models.session import Session, load_session
from .options import RGBA, RemoveOptions, RuntimeOptions, parse_providers
from .remover import Remover

__all__ = ["new_session", "remove"]

_default_session: Session | None = None
_default_lock = threading.Lock()


def new_session(
    model_name: str = DEFAULT_MODEL,
    model_path: str | Path | None = None,
    providers: list[str] | tuple[str, ...] | str | None = None,
    *,
    runtime: RuntimeOptions | None = None,
    download: bool = True,
) -> Session:
    """Load a model session, as rembg's `new_session`.

    model_name: a registered model (see `alphacut models list`), or with `model_path`
    the preprocessing to use for that custom ONNX file. providers: ONNX Runtime
    execution providers in order; a named accelerator that cannot load is an error.
    """
    if providers is not None:
        chosen = parse_providers(providers) if isinstance(providers, str) else tuple(providers)
        runtime = dataclasses.replace(runtime or RuntimeOptions(), providers=chosen)
    name = None if model_path is not None and model_name == DEFAULT_MODEL else model_name
    return load_session(name, model_path=model_path, runtime=runtime, download=download)


@overload
def remove(data: bytes, *args: object, **kwargs: object) -> bytes: ...
@overload
def remove(data: Image.Image, *args: object, **kwargs: object) -> Image.Image: ...
@overload
def remove(data: np.ndarray, *args: object, **kwargs: object) -> np.ndarray: ...


def remove(  # type: ignore[misc]
    data: bytes | Image.Image | np.ndarray,
    alpha_matting: bool = False,
    alpha_matting_foreground_threshold: int = 240,
    alpha_matting_background_threshold: int = 10,
    alpha_matting_erode_size: int = 10,
    session: Session | None = None,
    only_mask: bool = False,
    post_process_mask: bool = False,
    bgcolor: RGBA | tuple[int, int, int] | None = None,
    force_return_bytes: bool = False,
) -> bytes | Image.Image | np.ndarray:
    """Remove the background, as rembg's `remove`.

    bytes in gives PNG bytes out, a PIL image gives a PIL image (RGBA, or L for a
    mask), an array gives an array. Thresholds are in 0..255; the erode size is in
    pixels; bgcolor is (R, G, B[, A]) in 0..255. Invalid images raise
    `alphacut.InputError` (a ValueError) naming the problem.
    """
    options = RemoveOptions(
        only_mask=only_mask,
        alpha_matting=alpha_matting,
        alpha_matting_foreground_threshold=alpha_matting_foreground_threshold,
        alpha_matting_background_threshold=alpha_matting_background_threshold,
        alpha_matting_erode_size=alpha_matting_erode_size,
        post_process_mask=post_process_mask,
        bgcolor=tuple(bgcolor) if bgcolor is not None else None,  # type: ignore[arg-type]
    )
    if not isinstance(data, (bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        raise InputError(
            f"input type {type(data).__name__} is not supported: pass bytes, a PIL image or an array"
        )
    remover = Remover(session or _shared_default_session(), options=options)
    decoded = decode(data)
    result = remover.process(decoded, options)
    if isinstance(data, (bytes, bytearray, memoryview)) or force_return_bytes:
        return encode(result, options, decoded.icc_profile)
    if isinstance(data, Image.Image):
        return result
    return np.asarray(result)


def _shared_default_session() -> Session:
    global _default_session
    with _default_lock:
        if _default_session is None:
            _default_session = load_session(DEFAULT_MODEL)
        return _default_session
