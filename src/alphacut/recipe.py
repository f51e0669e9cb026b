"""`RemoverRecipe`: what a command's flags chose, as the one way to build its `Remover`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .models.registry import default_model, get_spec
from .models.store import ensure_model
from .options import Limits, RemoveOptions, RuntimeOptions
from .remover import Remover

__all__ = ["RemoverRecipe"]


@dataclass(frozen=True)
class RemoverRecipe:
    """How to build a `Remover`: what a command's flags chose, and what a Ray actor needs to
    build the driver's remover in its own process (it pickles small; nothing loads yet)."""

    model: str | None = None
    model_path: str | Path | None = None
    options: RemoveOptions = field(default_factory=RemoveOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    limits: Limits = field(default_factory=Limits)
    accept_licenses: tuple[str, ...] = ()

    def build(self, threads: int | None = None) -> Remover:
        """The Remover; `threads`: the CPUs this process was given (an actor's share)."""
        runtime = self.runtime
        if threads is not None:
            # Several actors share each node: OpenVINO must not pin them all onto core 0.
            runtime = dataclasses.replace(runtime, intra_op_threads=threads, pin_threads=False)
        return Remover(
            self.model,
            model_path=self.model_path,
            options=self.options,
            runtime=runtime,
            limits=self.limits,
            accept_licenses=self.accept_licenses,
        )

    def make_ready(self) -> None:
        """Fetch and verify a registered model once, on the driver, so a missing licence or
        a failed download is one clear error rather than one per actor."""
        if self.model_path is None:
            spec = get_spec(self.model or default_model())
            if not spec.is_custom:
                ensure_model(spec, accept_licenses=self.accept_licenses)
