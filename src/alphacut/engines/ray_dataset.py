"""`RemoveBackground`: alphacut on a Ray user's own dataset, one loaded model per actor.

::

    spare = ray.cluster_resources()["CPU"] - 1  # one CPU stays free for the read tasks
    ds.map_batches(RemoveBackground, fn_constructor_kwargs={"model": "u2netp"},
                   compute=ray.data.ActorPoolStrategy(size=max(1, int(spare))),
                   num_cpus=min(1.0, spare), batch_size=8)

Unlike the engine's own pipeline (`engines.ray`, built from the plan's rows), a user's
dataset is read by Ray Data's read tasks, which compete with the actors for CPUs: a pool
that takes them all starves the reads and the dataset waits forever. Each actor checks, and
logs a warning when it finds no CPU left for reading.
"""

from __future__ import annotations

import logging
import math
import sys
import time

import numpy as np

from ..batch.run import describe_failure
from ..errors import OptionsError
from ..options import Limits, RemoveOptions, RuntimeOptions
from ..recipe import RemoverRecipe

__all__ = ["RemoveBackground", "actor_threads", "reading_starved"]

log = logging.getLogger("alphacut.ray")


def actor_threads() -> int:
    """The CPUs Ray gave this actor, as inference threads (at least one)."""
    import ray

    resources: dict[str, float] = ray.get_runtime_context().get_assigned_resources()  # type: ignore[no-untyped-call]
    return max(1, math.floor(resources.get("CPU", 1.0)))


class RemoveBackground:
    """For ``Dataset.map_batches``: cut out the images of one column into another.

    column: encoded image bytes (``read_binary_files``) or decoded arrays (``read_images``).
    output_column gets the encoded cutout (``options.output_format``, PNG by default), and
    "error" the reason a row failed ("" when it did not), so one bad image never fails the
    batch. Other columns pass through. The model loads once per actor, with ONNX Runtime
    threads matching the actor's ``num_cpus``.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        model_path: str | None = None,
        options: RemoveOptions | None = None,
        runtime: RuntimeOptions | None = None,
        limits: Limits | None = None,
        accept_licenses: tuple[str, ...] = (),
        column: str = "bytes",
        output_column: str = "cutout",
    ) -> None:
        recipe = RemoverRecipe(
            model,
            model_path,
            options or RemoveOptions(),
            runtime or RuntimeOptions.from_env(),
            limits or Limits(),
            tuple(accept_licenses),
        )
        inside = _inside_ray()
        self._remover = recipe.build(threads=actor_threads() if inside else None)
        self._remover.load()
        if inside:
            starved = reading_starved()
            if starved:
                log.warning("%s", starved)
        self._options = recipe.options
        self._column = column
        self._output_column = output_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..imagefile import encode

        if self._column not in batch:
            raise OptionsError(
                f"RemoveBackground reads column {self._column!r}, but the batch has "
                f"{sorted(batch)}; pass column=..."
            )
        cutouts: list[bytes | None] = []
        errors: list[str] = []
        for value in batch[self._column]:
            try:
                data = bytes(value) if isinstance(value, (bytes, bytearray)) else np.asarray(value)
                decoded = self._remover.decode(data)
                result = self._remover.process(decoded, self._options)
                cutouts.append(encode(result, self._options, decoded.icc_profile))
                errors.append("")
            except Exception as exc:  # one bad row never fails the batch
                reason, kind = describe_failure(exc, f"column {self._column!r}")
                cutouts.append(None)
                errors.append(f"{kind}: {reason}")
        out = dict(batch)
        out[self._output_column] = np.array(cutouts, dtype=object)
        out["error"] = np.array(errors, dtype=object)
        return out


#: What each of Ray Data's read tasks asks for (its default).
_READ_CPUS = 1.0


def reading_starved(patience: float = 2.0) -> str | None:
    """Inside a Ray worker: a warning when the cluster has no CPU left for Ray Data's read
    tasks, else None. An actor pool that takes every CPU leaves the reads that feed it
    unscheduled, and the dataset waits forever. Reads come and go, so the free CPUs are
    watched for up to `patience` seconds: any moment with one free is enough."""
    import ray

    mine = float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
    if mine <= 0:
        return None  # an actor without CPUs takes none from the reads
    deadline = time.monotonic() + patience
    while float(ray.available_resources().get("CPU", 0.0)) < _READ_CPUS:  # type: ignore[no-untyped-call]
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    else:  # a CPU was free
        return None
    total = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
    most = math.floor((total - _READ_CPUS) / mine)
    advice = (
        f"give the pool at most {most} actor{'s' if most > 1 else ''} of num_cpus={mine:g} "
        f"(ActorPoolStrategy(size={most}))"
        if most >= 1
        else f"give the actor num_cpus={max(0.0, total - _READ_CPUS):g} or less"
    )
    return (
        f"RemoveBackground: this actor holds {mine:g} of the cluster's {total:g} CPUs and "
        f"none is left for Ray Data's read tasks ({_READ_CPUS:g} CPU each), so the dataset "
        f"may wait forever; {advice}"
    )


def _inside_ray() -> bool:
    if "ray" not in sys.modules:  # a process Ray started has imported it already
        return False
    import ray

    return bool(ray.is_initialized())
