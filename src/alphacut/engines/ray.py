"""The Ray engine: the batch plan of `alphacut remove`, run by a Ray Data actor pool.

Each actor holds one loaded `Remover` whose ONNX Runtime threads match the CPUs the actor
was given, and runs `batch.run_task` (the local engine's own per-file function) on each
task: it reads the input's bytes, decodes them in alphacut's code, and writes the output
atomically. So outputs are byte-identical to the local engine's, a bad file is a failed
row rather than a failed block, and the driver prints the same lines and summary.

The dataset is built from the plan's rows (``from_items``), so no read task competes with
the actors for CPUs: Ray Data's known stall, where an actor pool takes every CPU and the
read tasks feeding it can never be scheduled, cannot happen. Ray's own progress bars are
off; the caller shows alphacut's bar from the rows as they come back.

`RemoveBackground` is the same per-actor model for a Ray user's own dataset::

    ds.map_batches(RemoveBackground, fn_constructor_kwargs={"model": "u2netp"},
                   compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1, batch_size=8)
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..batch.plan import Plan, Task
from ..batch.run import BatchItem, describe_failure, pending_tasks, run_task, unmatched_items
from ..errors import AlphacutError, MissingDependency, OptionsError
from ..options import Limits, RemoveOptions, RuntimeOptions
from ..remover import RemoverRecipe
from .storage import ObjectPath, location

__all__ = ["RayOptions", "RemoveBackground", "RemoverRecipe", "run_batch_ray"]

log = logging.getLogger("alphacut.ray")

# Passed on to the actors of a cluster that was started elsewhere, so they find the same
# model cache and limits as the driver (a local cluster inherits the whole environment).
_FORWARDED_ENV = ("ALPHACUT_CACHE_DIR", "U2NET_HOME", "ALPHACUT_MAX_PIXELS", "ALPHACUT_PROVIDERS")


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs.

    address: None joins $RAY_ADDRESS when set, else starts a local cluster on this machine;
    "auto" joins a running cluster; "ray://host:10001" goes through Ray Client; "host:6379"
    joins that head node. actors: the pool's size (None: the cluster's CPUs ÷ cpus_per_actor).
    cpus_per_actor: CPUs reserved per actor, which is also its inference thread count.
    gpus_per_actor: GPUs per actor (give RuntimeOptions CUDA providers with it).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise OptionsError("the Ray engine needs at least one actor")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise OptionsError("cpus_per_actor must be positive and gpus_per_actor not negative")


def _actor_threads() -> int:
    """The CPUs Ray gave this actor, as inference threads (at least one)."""
    import ray

    resources: dict[str, float] = ray.get_runtime_context().get_assigned_resources()  # type: ignore[no-untyped-call]
    return max(1, math.floor(resources.get("CPU", 1.0)))


class RemoveFiles:
    """The engine's actor: one loaded model, `run_task` per row of the plan."""

    def __init__(self, recipe: RemoverRecipe) -> None:
        self._remover = recipe.build(threads=_actor_threads())
        self._remover.load()
        self._options = recipe.options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [
            run_task(self._remover, Task(location(str(s)), location(str(d))), self._options)
            for s, d in zip(batch["source"], batch["destination"], strict=True)
        ]
        return {
            "index": batch["index"],
            "status": np.array([i.status for i in items], dtype=object),
            "error": np.array([i.error or "" for i in items], dtype=object),
            "error_type": np.array([i.error_type or "" for i in items], dtype=object),
            "seconds": np.array([i.seconds for i in items], dtype=np.float64),
        }


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
            runtime or RuntimeOptions(),
            limits or Limits(),
            tuple(accept_licenses),
        )
        threads = _actor_threads() if _inside_ray() else None
        self._remover = recipe.build(threads=threads)
        self._remover.load()
        self._options = recipe.options
        self._column = column
        self._output_column = output_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..imageio import encode

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


def _inside_ray() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


def run_batch_ray(
    recipe: RemoverRecipe,
    plan: Plan,
    *,
    overwrite: bool = False,
    ray_options: RayOptions | None = None,
) -> Iterator[BatchItem]:
    """Yield a `BatchItem` per task, as the local engine's `run_batch` does, with the work
    done by a Ray actor pool. Outputs already there are skipped on the driver (unless
    `overwrite`), so an interrupted run resumes. A local cluster started here is shut down
    when the iteration ends."""
    ray_options = ray_options or RayOptions()
    yield from unmatched_items(plan)
    todo: list[Task] = []
    for task in pending_tasks(plan, overwrite):
        if isinstance(task, BatchItem):
            yield task
        else:
            todo.append(task)
    if not todo:
        return
    recipe.make_ready()
    ray = _import_ray()
    started_here = _connect(ray, ray_options)
    try:
        yield from _run(ray, recipe, todo, ray_options)
    except AlphacutError:
        raise  # Ray re-raises an actor's own error as an instance of its class
    except ray.exceptions.RayError as exc:
        # The job itself failed (an actor that cannot start, a lost node): one clear line,
        # and the outputs written so far stay for the resumed run.
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise AlphacutError(f"the Ray job failed: {first}") from exc
    finally:
        if started_here:
            ray.shutdown()


def _import_ray() -> Any:
    # A cluster from `ray start` wants the token `ray start` saved; a driver sends it only
    # in token mode, which Ray reads once, at import.
    token_saved = "RAY_AUTH_TOKEN" in os.environ or (Path.home() / ".ray" / "auth_token").is_file()
    if token_saved and "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependency(
            "the Ray engine needs Ray Data: pip install 'alphacut[ray]'"
        ) from None
    return ray


def _connect(ray: Any, ray_options: RayOptions) -> bool:
    """Join or start a cluster; True when this call started a local one."""
    if ray.is_initialized():
        return False
    address = ray_options.address or os.environ.get("RAY_ADDRESS") or None
    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    common: dict[str, Any] = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address is None:
        from .._system import usable_cores

        ray.init(
            # "local" starts a cluster of this process's own even when another one runs
            # here; a bare init() would join that one instead.
            address="local",
            num_cpus=usable_cores(),
            include_dashboard=False,
            # Rows carry names and statuses, never pixels, so a small store is plenty.
            object_store_memory=256 * 2**20,
            **common,
        )
        return True
    try:
        ray.init(address=address, **common)
    except ConnectionError as exc:
        raise OptionsError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    return False


def _run(
    ray: Any, recipe: RemoverRecipe, todo: list[Task], ray_options: RayOptions
) -> Iterator[BatchItem]:
    rows = [
        {"index": i, "source": _absolute(t.source), "destination": _absolute(t.destination)}
        for i, t in enumerate(todo)
    ]
    if ray.util.client.ray.is_connected():
        results = _through_client(ray, recipe, rows, ray_options)
    else:
        results = _pipeline(recipe, rows, ray_options)
    for row in results:
        yield BatchItem(
            todo[int(row["index"])],
            row["status"],
            row["error"] or None,
            row["error_type"] or None,
            row["seconds"],
        )


def _through_client(
    ray: Any, recipe: RemoverRecipe, rows: list[dict[str, Any]], ray_options: RayOptions
) -> Iterator[dict[str, Any]]:
    """Through Ray Client, Ray Data cannot drive a pipeline from here (it needs a core worker
    of its own) and tasks cannot stream their results, so the pipeline runs in a task on the
    cluster and puts each row in a queue that this side reads as rows finish."""
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    task = ray.remote(num_cpus=0)(_pipeline_into).remote(recipe, rows, ray_options, queue)
    received = 0
    while received < len(rows):
        try:
            row = queue.get(timeout=0.5)
        except Empty:
            finished, _ = ray.wait([task], timeout=0)
            if finished:
                ray.get(task)  # raises the pipeline's error, if it failed
                if queue.empty():
                    break
            continue
        received += 1
        yield row


def _pipeline_into(
    recipe: RemoverRecipe, rows: list[dict[str, Any]], ray_options: RayOptions, queue: Any
) -> None:
    for row in _pipeline(recipe, rows, ray_options):
        queue.put(row)


def _pipeline(
    recipe: RemoverRecipe, rows: list[dict[str, Any]], ray_options: RayOptions
) -> Iterator[dict[str, Any]]:
    """The Ray Data pipeline over the plan's rows; yields each result row as plain values."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
    actors = ray_options.actors or max(1, math.floor(cpus / ray_options.cpus_per_actor))
    # Small blocks keep every actor busy to the end and the progress bar moving.
    rows_per_block = max(1, min(64, len(rows) // (actors * 16)))
    dataset: Any = ray.data.from_items(
        rows, override_num_blocks=math.ceil(len(rows) / rows_per_block)
    )
    dataset = dataset.map_batches(
        RemoveFiles,
        fn_constructor_kwargs={"recipe": recipe},
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=ray_options.cpus_per_actor,
        num_gpus=ray_options.gpus_per_actor or None,
        batch_size=1,
        batch_format="numpy",
    )
    for row in dataset.iter_rows():
        yield {
            "index": int(row["index"]),
            "status": str(row["status"]),
            "error": str(row["error"]),
            "error_type": str(row["error_type"]),
            "seconds": float(row["seconds"]),
        }


def _absolute(place: Path | ObjectPath) -> str:
    # Actors may start in another working directory than the driver's.
    return str(place.absolute()) if isinstance(place, Path) else str(place)
