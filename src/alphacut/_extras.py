"""The optional dependencies, in one place: which extra installs each, and one way to import
them.

Every import of a module that comes from an extra goes through `require`, so a missing one
is a `MissingDependency` that names the extra to install (``pip install 'alphacut[video]'``),
never a bare ModuleNotFoundError; `installed` asks without importing. Nothing here imports
anything until asked.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from .errors import MissingDependency

__all__ = ["EXTRAS", "installed", "pymatting", "pymatting_quietly", "require"]

#: Each optional top-level module: the distribution pip installs, and the extra that brings
#: it (pyproject.toml's [project.optional-dependencies]). OpenCV comes with both [matting]
#: (refinement) and [video] (smoothing); callers name the extra their feature documents.
EXTRAS: dict[str, tuple[str, str]] = {
    "pymatting": ("pymatting", "matting"),
    "cv2": ("opencv-python-headless", "matting"),
    "av": ("PyAV", "video"),
    "pillow_heif": ("pillow-heif", "heif"),
    "openvino": ("OpenVINO", "openvino"),
    "onnx": ("onnx", "tools"),
    "onnxconverter_common": ("onnxconverter-common", "fp16"),
    "py_sod_metrics": ("pysodmetrics", "eval"),
    "fsspec": ("fsspec", "storage"),
    "s3fs": ("s3fs", "storage"),
    "ray": ("Ray Data", "ray"),
    "watchdog": ("watchdog", "watch"),
    "fastapi": ("FastAPI", "server"),
    "starlette": ("FastAPI", "server"),
    "uvicorn": ("uvicorn", "server"),
    "swagger_ui": ("swagger-ui-py", "server"),
    "python_multipart": ("python-multipart", "server"),
    "prometheus_client": ("prometheus-client", "server"),
}


def require(module: str, purpose: str, *, extra: str | None = None) -> Any:
    """`module` (a dotted name is fine), imported; or MissingDependency saying that
    `purpose` ("video", "--refine") needs it and which extra installs it. `extra` overrides
    the table's, for a module that several extras bring."""
    top = module.partition(".")[0]
    package, default_extra = EXTRAS.get(top, (top, ""))
    chosen = extra or default_extra
    how = f"pip install 'alphacut[{chosen}]'" if chosen else f"pip install {package}"
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == top
        if not absent:
            # The module is there, but something it needs is not (a system library, or a
            # dependency of its own): say so rather than ask for what is installed.
            raise MissingDependency(
                f"{purpose} needs {package}, which is installed but cannot be imported "
                f"({exc}); reinstall it with {how}"
            ) from exc
        raise MissingDependency(f"{purpose} needs {package}: {how}") from exc


def pymatting() -> Any:
    """pymatting, which every matting stage needs: alpha matting, decontaminated colours
    (with ViTMatte and refinement too), refinement's solvers and the truth clip."""
    return require("pymatting", "edge matting (alpha matting, decontamination, refinement)")


@contextlib.contextmanager
def pymatting_quietly() -> Iterator[None]:
    """Run pymatting with its chatter in alphacut's log: it prints its solver's troubles (an
    incomplete Cholesky that needed a shift) to stdout, which is a log's business, not the
    user's terminal's nor a server's output. Its numpy warnings are silenced too."""
    import numpy as np

    with (
        contextlib.redirect_stdout(io.StringIO()) as chatter,
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
    if chatter.getvalue().strip():
        logging.getLogger("alphacut.matting").debug("pymatting: %s", chatter.getvalue().strip())


def installed(*modules: str) -> bool:
    """Whether every one of `modules` can be imported (asked without importing them)."""
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # a parent package missing, or a broken entry
            return False
    return True
