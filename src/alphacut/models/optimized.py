"""A saved copy of each model as ONNX Runtime optimised it, so later loads skip that work.

On every load ONNX Runtime rewrites the graph: it folds constants, fuses operators and, on
x86, moves convolutions to its blocked NCHWc layout with reordered weights. That costs
70 ms for u2netp and seconds for the 1024-pixel models, in every CLI run. The rewritten
graph depends on the ONNX Runtime version and on the CPU's instruction set, so the copy is
keyed by both and by the model file's identity (path, size, modification time); anything
else makes a new copy. Its outputs are bit-identical to the original's.

Only CPU sessions are saved: ONNX Runtime does not support serialising graphs that other
execution providers have taken over. A copy that cannot be written or read is never an
error: the model then loads as it always did.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._system import cache_home, cpu_flag_line
from .blocked_layout import block_size_candidates, rewrite_in_blocked_layout

__all__ = ["open_session", "optimized_cache_dir"]

log = logging.getLogger("alphacut.models")

_CPU = "CPUExecutionProvider"
# Part of every copy's key: changing how copies are made (a new rewrite) makes new ones.
_FORMAT = "3"
# Protobuf cannot hold a model of 2 GiB or more in one file; leave room for padded weights.
_LARGEST_SAVED_MODEL = 1 << 30

SessionOptionsFactory = Callable[[bool], Any]


def optimized_cache_dir() -> Path:
    """$ALPHACUT_CACHE_DIR/ort, else $XDG_CACHE_HOME/alphacut/ort, else ~/.cache/alphacut/ort."""
    return cache_home() / "ort"


def open_session(
    path: Path,
    providers: tuple[str, ...],
    make_options: SessionOptionsFactory,
    *,
    reuse: bool,
) -> tuple[Any, Path | None]:
    """An `onnxruntime.InferenceSession` for `path`, and the saved copy it came from (if any).

    make_options(optimize) builds the session options: with `optimize` False they must turn
    graph optimisation off, since the saved copy is already optimised. ONNX Runtime's own
    exceptions propagate when the model itself cannot be loaded.
    """
    import onnxruntime as ort

    target = _saved_path(path, ort.__version__) if reuse and providers == (_CPU,) else None
    if target is not None and target.is_file():
        try:
            session = ort.InferenceSession(
                str(target), sess_options=make_options(False), providers=list(providers)
            )
            return session, target
        except Exception as exc:  # a truncated or foreign file: make it again below
            log.warning("ignoring the unreadable optimised copy %s: %s", target, exc)
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
    if target is not None:
        saved = _save_while_loading(ort, path, target, providers, make_options)
        if saved is not None:
            return saved, None
    return ort.InferenceSession(
        str(path), sess_options=make_options(True), providers=list(providers)
    ), None


def _save_while_loading(
    ort: Any,
    path: Path,
    target: Path,
    providers: tuple[str, ...],
    make_options: SessionOptionsFactory,
) -> Any | None:
    """Load `path` and write its optimised graph to `target` on the way; None if that failed."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        options = make_options(True)
        options.optimized_model_filepath = str(temporary)
        session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
        os.replace(temporary, target)
    except Exception as exc:  # unwritable cache, full disk, or a model ORT cannot serialise
        log.info(
            "could not save an optimised copy of %s (%s); a writable ALPHACUT_CACHE_DIR makes "
            "loading faster and, on x86, inference about 10%% faster",
            path,
            exc,
        )
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        return None
    _remove_older_copies(target)
    log.info("saved the optimised graph of %s to %s", path, target)
    try:
        return _in_blocked_layout(ort, session, path, target, providers, make_options)
    except Exception as exc:  # an unforeseen graph: the plain optimised copy still serves
        log.debug("kept the plain optimised graph of %s: %s", path, exc)
        return session


def _in_blocked_layout(
    ort: Any,
    session: Any,
    path: Path,
    target: Path,
    providers: tuple[str, ...],
    make_options: SessionOptionsFactory,
) -> Any:
    """Replace the saved copy by its blocked-layout rewrite (see `blocked_layout`) when that
    gives exactly the outputs of `session`; returns the session to use."""
    reference = _reference_run(session)
    if reference is None:
        return session
    attempts = [
        (block, split)
        for block in block_size_candidates(_cpu_features())
        for split in (True, False)
    ]
    for block, split in attempts:
        data = rewrite_in_blocked_layout(target, path, block, split_concatenations=split)
        if data is None:
            continue
        candidate = ort.InferenceSession(
            data, sess_options=make_options(False), providers=list(providers)
        )
        if not _reproduces(candidate, reference):
            continue
        temporary = target.with_name(
            f".{target.name}.{os.getpid()}.{threading.get_ident()}.blocked.tmp"
        )
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        except OSError:  # this process still runs the rewrite; the next one makes it again
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        log.info(
            "%s: upsampling and concatenation stay in the NCHWc layout (blocks of %d%s)",
            path,
            block,
            ", concatenations split" if split else "",
        )
        return candidate
    return session


Run = tuple[dict[str, np.ndarray], list[np.ndarray]]


def _reference_run(session: Any) -> Run | None:
    """One random float input for `session` and its outputs; None unless it takes one
    float tensor of static shape."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return None
    model_input = inputs[0]
    if model_input.type != "tensor(float)" or not all(
        isinstance(d, int) for d in model_input.shape
    ):
        return None
    batch = np.random.default_rng(0).standard_normal(model_input.shape).astype(np.float32)
    feed = {model_input.name: batch}
    return feed, session.run(None, feed)


def _reproduces(candidate: Any, reference: Run) -> bool:
    """Whether `candidate` gives the reference outputs bit for bit."""
    feed, expected = reference
    return all(
        np.array_equal(a, b) for a, b in zip(candidate.run(None, feed), expected, strict=True)
    )


def _saved_path(path: Path, ort_version: str) -> Path | None:
    try:
        stat = path.stat()
    except OSError:
        return None  # loading will report the missing file
    if stat.st_size > _LARGEST_SAVED_MODEL:
        return None
    identity = "\n".join(
        [
            str(path.resolve()),
            str(stat.st_size),
            str(stat.st_mtime_ns),
            ort_version,
            _FORMAT,
            platform.machine(),
            _cpu_features(),
        ]
    )
    key = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return optimized_cache_dir() / f"{path.stem}.{key}.onnx"


def _remove_older_copies(current: Path) -> None:
    """Copies of the same model name made for another ORT version, CPU or file revision."""
    stem = current.name.rsplit(".", 2)[0]
    for other in current.parent.glob("*.onnx"):
        if other != current and other.name.rsplit(".", 2)[0] == stem:
            with contextlib.suppress(OSError):
                other.unlink(missing_ok=True)


def _cpu_features() -> str:
    """The instruction-set flags the NCHWc layout and kernels are chosen by."""
    return cpu_flag_line() or platform.processor()
