"""`ModelPolicy`: what loading a model may do on this process's behalf.

Whoever owns the process decides it once: a command from its flags, the server from its
settings (downloads off unless `--allow-downloads`). Every load below that, the main model,
a ViTMatte refiner, a video job's model, goes through the same policy, so no request option
can reach a model the owner did not allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelNotFound
from .fetch import ProgressCallback
from .registry import ModelSpec
from .store import ensure_model, find_model, pull_command

__all__ = ["ModelPolicy"]


@dataclass(frozen=True)
class ModelPolicy:
    """download: fetch a registered model that is not in the cache (else ModelNotFound).
    accept_licenses: model or licence names whose non-commercial or copyleft terms the user
    accepted. progress: told about each download's bytes. refusal: what a missing model's
    error tells the reader when downloads are off (else: the command that fetches it)."""

    download: bool = True
    accept_licenses: tuple[str, ...] = ()
    progress: ProgressCallback | None = field(default=None, compare=False)
    refusal: str | None = None

    def require(self, spec: ModelSpec) -> None:
        """ModelNotFound now, without fetching anything, if `spec` is missing and this policy
        may not fetch it."""
        if self.download or find_model(spec) is not None:
            return
        if self.refusal is None:
            ensure_model(spec, download=False)  # the cache's own error, naming the pull
            return
        raise ModelNotFound(
            f"model {spec.name!r} is not available: {self.refusal}, or fetch it with "
            f"`{pull_command(spec)}`"
        )

    def model_file(self, spec: ModelSpec) -> Path:
        """The verified local file of `spec`, fetched first if this policy allows it."""
        self.require(spec)
        return ensure_model(
            spec,
            download=self.download,
            progress=self.progress,
            accept_licenses=self.accept_licenses,
        )
