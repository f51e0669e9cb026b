"""The fast path's model: an INT8 copy of a registered model, built once and reused.

The copy is calibrated on the photos shipped in `alphacut/calibration`, with the model's
shipped recipe, and cached beside the model as `<name>.int8.onnx`. Its provenance (the
source's checksum, the calibration photos' digest, the recipe, the alphacut version) is in
the file's metadata; a copy whose source or calibration no longer matches is rebuilt.
Concurrent first uses, even from several processes, build it once (a lock file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .._system import int8_dot_product
from ..errors import OptionsError
from ..models.registry import ModelSpec
from ..models.store import cache_dir, pull_command, verify_checksum

__all__ = ["calibration_folder", "fast_model_path", "fast_recipe", "is_current"]

if TYPE_CHECKING:
    from .quantize import QuantRecipe

log = logging.getLogger("alphacut.models")


def calibration_folder() -> Path:
    """The shipped calibration photos."""
    return Path(str(resources.files("alphacut") / "calibration"))


def fast_model_path(spec: ModelSpec, source: Path, *, build: bool = True) -> Path:
    """The cached INT8 copy of `spec` (whose FP32 file is `source`), built first if needed."""
    if not spec.traits.int8:
        raise OptionsError(
            f"{spec.name} has no INT8 copy for --fast (only saliency and clothes models have one)"
        )
    target = cache_dir() / f"{spec.name}.int8.onnx"
    recipe = fast_recipe(spec)
    if is_current(target, source, recipe):
        return target
    if not build:
        raise OptionsError(
            f"no INT8 copy of {spec.name} yet: run `{pull_command(spec, fast=True)}`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(f".{target.name}.lock")):
        if is_current(target, source, recipe):  # another process built it meanwhile
            return target
        from .int8 import quantize_model

        log.warning(
            "building the INT8 model for --fast from %s (once; 20 s for u2netp, minutes for u2net)",
            spec.name,
        )
        quantize_model(source, calibration_folder(), target, recipe=recipe)
    return target


def fast_recipe(spec: ModelSpec) -> QuantRecipe:
    """The model's shipped recipe, with 7-bit weights on a CPU without an 8-bit dot product
    (VNNI or AMX): there ONNX Runtime and oneDNN sum pairs of 8-bit products in saturating
    16-bit lanes, which clips U²-Net's large sums (measured on an AVX2-only AMD EPYC,
    u2netp's copy against FP32 on scikit-image's photos: mean IoU 0.870, worst 0.269 with
    8-bit weights; 0.983 and 0.923 with 7-bit)."""
    from .quantize import recipe_for

    recipe = recipe_for(spec)
    if not int8_dot_product():
        recipe = dataclasses.replace(recipe, reduce_range=True)
    return recipe


def _provenance(target: Path) -> dict[str, str]:
    """The INT8 file's provenance, remembered beside it per (size, mtime): reading it from
    the model takes the onnx package, whose import alone costs 0.6 s of every --fast start."""
    from .quantize import read_provenance

    stat = target.stat()
    key = [stat.st_size, stat.st_mtime_ns]
    memo = target.with_name(f".{target.name}.provenance.json")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(memo.read_text())
        if saved["key"] == key:
            return dict(saved["provenance"])
    provenance = read_provenance(target)
    with contextlib.suppress(OSError):
        partial = memo.with_name(f"{memo.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps({"key": key, "provenance": provenance}))
        partial.replace(memo)
    return provenance


def is_current(target: Path, source: Path, recipe: QuantRecipe | None = None) -> bool:
    """Whether `target` is an INT8 copy of `source` calibrated on today's shipped photos
    (and, when given, made with `recipe`: a copy from a machine with another CPU, on a
    shared cache, is rebuilt rather than run with weights this CPU clips)."""
    if not target.is_file():
        return False
    try:
        provenance = _provenance(target)
    except Exception:  # a corrupt or foreign file: rebuild it
        return False
    source_md5 = provenance.get("source_md5")
    if recipe is not None and provenance.get("recipe") != recipe.to_json():
        return False
    return (
        source_md5 is not None
        and provenance.get("calibration_digest") == _shipped_digest()
        # Remembered per (path, size, mtime): the source was hashed when it was loaded.
        and verify_checksum(source, f"md5:{source_md5}")
    )


@functools.lru_cache(maxsize=1)
def _shipped_digest() -> str:
    """The shipped photos cannot change while a process runs: hash them once."""
    from .quantize import calibration_digest, calibration_files

    return calibration_digest(calibration_files(calibration_folder()))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
