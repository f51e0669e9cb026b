"""alphacut: background removal with U²-Net-family models on ONNX Runtime.

Quick use (rembg-compatible)::

    from alphacut import remove, new_session
    png = remove(open("photo.jpg", "rb").read(), session=new_session("u2netp"))

Typed use::

    from alphacut import Remover, RemoveOptions
    Remover("u2netp", options=RemoveOptions(bgcolor=(255, 255, 255, 255))).remove_file("a.jpg", "a.png")

Names are imported on first access, so ``import alphacut`` (and the CLI's
``--help``) stays fast and loads neither NumPy nor ONNX Runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import new_session, remove
    from .batch import BatchItem
    from .errors import (
        AlphacutError,
        AuthenticationFailed,
        CannotListen,
        ChecksumMismatch,
        ClusterUnavailable,
        DownloadFailed,
        ImageTooLarge,
        InferenceError,
        InferenceTimeout,
        InputError,
        InputNotFound,
        InvalidModel,
        JobNotFound,
        JobNotReady,
        LicenseNotAccepted,
        MissingDependency,
        ModelError,
        ModelNotFound,
        OptionsError,
        OutputError,
        OutputExists,
        OutputIsInput,
        Overloaded,
        ProviderUnavailable,
        StorageError,
        UnknownSource,
        UnsupportedImage,
        UnsupportedVideo,
        UploadStalled,
        VideoTooLarge,
    )
    from .models import MODELS, ModelPolicy, ModelSpec, Session, ensure_model
    from .options import SETTINGS, Limits, PromptMark, RemoveOptions, RuntimeOptions, parse_color
    from .pool import ModelPool, load_session
    from .remover import Remover
    from .video import Smoothing, VideoOptions, VideoReport

_EXPORTS: dict[str, str] = {
    "remove": "api",
    "new_session": "api",
    "Remover": "remover",
    "BatchItem": "batch",
    "RemoveOptions": "options",
    "PromptMark": "options",
    "RuntimeOptions": "options",
    "Limits": "options",
    "SETTINGS": "options",
    "parse_color": "options",
    "MODELS": "models",
    "ModelSpec": "models",
    "Session": "models",
    "ensure_model": "models",
    "load_session": "pool",
    "ModelPool": "pool",
    "ModelPolicy": "models",
    "AlphacutError": "errors",
    "OptionsError": "errors",
    "InputError": "errors",
    "InputNotFound": "errors",
    "OutputError": "errors",
    "OutputExists": "errors",
    "OutputIsInput": "errors",
    "UnknownSource": "errors",
    "UnsupportedImage": "errors",
    "UnsupportedVideo": "errors",
    "VideoTooLarge": "errors",
    "VideoReport": "video",
    "VideoOptions": "video",
    "Smoothing": "video",
    "ImageTooLarge": "errors",
    "UploadStalled": "errors",
    "ModelError": "errors",
    "ModelNotFound": "errors",
    "InvalidModel": "errors",
    "JobNotFound": "errors",
    "JobNotReady": "errors",
    "LicenseNotAccepted": "errors",
    "ChecksumMismatch": "errors",
    "DownloadFailed": "errors",
    "ProviderUnavailable": "errors",
    "MissingDependency": "errors",
    "StorageError": "errors",
    "InferenceError": "errors",
    "Overloaded": "errors",
    "InferenceTimeout": "errors",
    "AuthenticationFailed": "errors",
    "CannotListen": "errors",
    "ClusterUnavailable": "errors",
}

__all__ = [
    "MODELS",
    "SETTINGS",
    "AlphacutError",
    "AuthenticationFailed",
    "BatchItem",
    "CannotListen",
    "ChecksumMismatch",
    "ClusterUnavailable",
    "DownloadFailed",
    "ImageTooLarge",
    "InferenceError",
    "InferenceTimeout",
    "InputError",
    "InputNotFound",
    "InvalidModel",
    "JobNotFound",
    "JobNotReady",
    "LicenseNotAccepted",
    "Limits",
    "MissingDependency",
    "ModelError",
    "ModelNotFound",
    "ModelPolicy",
    "ModelPool",
    "ModelSpec",
    "OptionsError",
    "OutputError",
    "OutputExists",
    "OutputIsInput",
    "Overloaded",
    "PromptMark",
    "ProviderUnavailable",
    "RemoveOptions",
    "Remover",
    "RuntimeOptions",
    "Session",
    "Smoothing",
    "StorageError",
    "UnknownSource",
    "UnsupportedImage",
    "UnsupportedVideo",
    "UploadStalled",
    "VideoOptions",
    "VideoReport",
    "VideoTooLarge",
    "__version__",
    "ensure_model",
    "load_session",
    "new_session",
    "parse_color",
    "remove",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'alphacut' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
