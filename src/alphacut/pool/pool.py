"""`ModelPool`: the models one process has loaded, each once, under one runtime and policy.

A pool holds the segmentation sessions, the ViTMatte refiners, the dynamic-batch copies and
the latest background image. Every `Remover` built over it, every request of a server and
a Ray actor's remover share them, and every load follows the pool's `ModelPolicy`, so
nothing a request asks for can make the process fetch a model its owner did not allow.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from PIL import Image

from ..imagefile import decode
from ..models.backends import check_providers
from ..models.policy import ModelPolicy
from ..models.registry import ModelSpec, get_spec, vitmatte_name
from ..models.session import Session
from ..options import Limits, RemoveOptions, RuntimeOptions
from ..pipeline.edge import Refiner
from ..pipeline.vitmatte import vitmatte_alpha
from .loading import load_session

__all__ = ["ModelPool", "extra_models"]


def extra_models(options: RemoveOptions) -> list[str]:
    """The registered models `options` load besides the main one."""
    if options.vitmatte and not options.only_mask:
        return [vitmatte_name(options.vitmatte_model)]
    return []


class ModelPool:
    """Loaded models, shared and thread-safe; providers that cannot run here fail at once
    (ProviderUnavailable), before anything loads."""

    def __init__(
        self, runtime: RuntimeOptions | None = None, policy: ModelPolicy | None = None
    ) -> None:
        self.runtime = runtime or RuntimeOptions.from_env()
        self.policy = policy or ModelPolicy()
        check_providers(self.runtime)
        self._lock = threading.RLock()
        self._sessions: dict[tuple[str, str, bool], Session] = {}
        self._refiners: dict[str, Session] = {}
        self._batched: dict[int, tuple[Session, Session]] = {}
        self._background: tuple[Path, Image.Image] | None = None

    def session(
        self,
        model: str | ModelSpec | None = None,
        *,
        model_path: str | Path | None = None,
        batched: bool = False,
    ) -> Session:
        """The session of a registered model (None: the default) or of the ONNX file at
        `model_path`, loaded on first use (fetched first if the policy allows it). `batched`:
        its dynamic-batch copy instead, for a model that batches (see `batched`); the plain
        session it is made from is kept only if it was asked for itself."""
        name = model.name if isinstance(model, ModelSpec) else model or ""
        path = str(model_path or "")
        plain_key, key = (name, path, False), (name, path, batched)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions.get(plain_key) or load_session(
                    model, model_path=model_path, runtime=self.runtime, policy=self.policy
                )
                if batched and session.batches:
                    session = self._batched_copy(session)
                self._sessions[key] = session
        return session

    def batched(self, session: Session) -> Session:
        """A dynamic-batch copy of `session`'s model that runs several images per call, made
        once per session and checked to give the masks one at a time gives."""
        with self._lock:
            kept = self._batched.get(id(session))
            if kept is None or kept[0] is not session:
                kept = self._batched[id(session)] = (session, self._batched_copy(session))
        return kept[1]

    def _batched_copy(self, session: Session) -> Session:
        from ..graphs.dynamic_batch import batched_session

        self.runtime.check_batch(2, "a batch")
        return batched_session(session, self.runtime)

    def refiner(self, options: RemoveOptions) -> Refiner | None:
        """ViTMatte's refiner for `options` (None unless they ask for it), its checkpoint
        loaded once under the pool's policy."""
        if not options.vitmatte or options.only_mask:
            return None
        name = vitmatte_name(options.vitmatte_model)
        with self._lock:
            session = self._refiners.get(name)
            if session is None:
                spec = get_spec(name)
                path = self.policy.model_file(spec)
                runtime = dataclasses.replace(self.runtime, reuse_optimized_model=False)
                session = self._refiners[name] = Session(spec, path, runtime)

        def refine(image: Image.Image, mask: Image.Image) -> Image.Image:
            return vitmatte_alpha(session, image, mask, options)

        return refine

    def require(self, options: RemoveOptions) -> None:
        """ModelNotFound now, before any work, if `options` need a model besides the main
        one that the policy may not fetch."""
        for name in extra_models(options):
            self.policy.require(get_spec(name))

    def background(self, path: Path, limits: Limits) -> Image.Image:
        """The decoded background image at `path` (only the latest is kept: options rarely
        vary between images)."""
        with self._lock:
            kept = self._background
        if kept is not None and kept[0] == path:
            return kept[1]
        image = decode(path, limits=limits).image
        with self._lock:
            self._background = (path, image)
        return image
