"""Model registry, cache and ONNX Runtime sessions."""

from .policy import ModelPolicy
from .registry import (
    DEFAULT_MODEL,
    MODELS,
    ModelSpec,
    NpmChunkedSource,
    PackageSource,
    PyPIWheelSource,
    default_model,
    get_spec,
)
from .session import Session, custom_spec
from .store import cache_dir, candidate_paths, ensure_model, find_model, verify_checksum

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelPolicy",
    "ModelSpec",
    "NpmChunkedSource",
    "PackageSource",
    "PyPIWheelSource",
    "Session",
    "cache_dir",
    "candidate_paths",
    "custom_spec",
    "default_model",
    "ensure_model",
    "find_model",
    "get_spec",
    "verify_checksum",
]
