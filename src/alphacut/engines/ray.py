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

`RemoveBackground` (in `engines.ray_dataset`) is the same per-actor model for a Ray user's
own dataset, where the reads do compete with the actors for CPUs.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import require
from ..batch.plan import Plan, Task
from ..batch.run import BatchItem, pending_tasks, run_task, unmatched_items
from ..errors import AlphacutError, ClusterUnavailable, OptionsError
from ..recipe import RemoverRecipe
from ..storage import ObjectPath, location
from .ray_dataset import RemoveBackground, actor_threads

__all__ = [
    "RayOptions",
    "RemoveBackground",
    "RemoverRecipe",
    "account_for_every_task",
    "last_line",
    "run_batch_ray",
]

log = logging.getLogger("alphacut.ray")

# Passed on to the actors of a cluster that was started elsewhere, so they find the same
# model cache and limits as the driver (a local cluster inherits the whole environment).
_FORWARDED_ENV = ("ALPHACUT_CACHE_DIR", "U2NET_HOME", "ALPHACUT_MAX_PIXELS", "ALPHACUT_PROVIDERS")
_CLIENT_CONNECT_TRIES = 3


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs.

    address: None joins $RAY_ADDRESS when set, else starts a local cluster on this machine;
    "auto" joins a running cluster; "ray://host:10001" goes through Ray Client; "host:6379"
    joins that head node. actors: the pool's size (None: the cluster's CPUs ÷ cpus_per_actor).
    cpus_per_actor: CPUs reserved per actor, which is also its inference thread count.
    gpus_per_actor: GPUs per actor (give RuntimeOptions CUDA providers with it).
    actor_restarts: how often Ray may restart an actor that died (-1: without end). 0 by
    default: Ray then warns on the terminal about every actor that may restart
    (ray-project/ray#53727), and alphacut's own reruns below cover a lost worker instead.
    reruns: how often the files left are run again, on a fresh pool, after the job lost a
    worker (its process killed, its node gone). A file that kills every actor that takes it
    ends the job in one line once they are used up; a rerun of the command resumes.
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    actor_restarts: int = 0
    reruns: int = 2

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise OptionsError("the Ray engine needs at least one actor")
        if self.actor_restarts < -1:
            raise OptionsError("actor_restarts must be -1 (no limit), 0 or more")
        if self.reruns < 0:
            raise OptionsError("reruns must be 0 or more")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise OptionsError("cpus_per_actor must be positive and gpus_per_actor not negative")


class RemoveFiles:
    """The engine's actor: one loaded model, `run_task` per row of the plan."""

    def __init__(self, recipe: RemoverRecipe) -> None:
        self._remover = recipe.build(threads=actor_threads())
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
        raise AlphacutError(f"the Ray job failed: {last_line(exc)}") from exc
    finally:
        if started_here:
            ray.shutdown()


def last_line(exc: BaseException) -> str:
    """The last line of an error's text (Ray's carry a remote traceback above it), for one
    line on the terminal; the type's name when it has no text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _import_ray() -> Any:
    # A cluster from `ray start` wants the token `ray start` saved; a driver sends it only
    # in token mode, which Ray reads once, at import.
    token_saved = "RAY_AUTH_TOKEN" in os.environ or (Path.home() / ".ray" / "auth_token").is_file()
    if token_saved and "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
        os.environ["RAY_AUTH_MODE"] = "token"
    ray = require("ray", "the Ray engine (--engine ray)")
    require("ray.data", "the Ray engine (--engine ray)")
    return ray


def _relay_cluster_errors() -> None:
    """Ray's driver prints the cluster's error messages to stdout as they come, a lost
    worker as a paragraph with a traceback ("(raylet) A worker died or was killed …"). Here
    each lost worker becomes one alphacut warning (its files run again, see
    `_rows_with_reruns`), and any other message its first line."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # pragma: no cover - a Ray without it prints its own lines
        return
    printer = ray_worker.print_to_stdstream
    if getattr(printer, "alphacut_relay", False):
        return
    reported: set[str] = set()

    def relay(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            printer(data, ignore_prefix)
            return
        for message in data.get("lines", []):
            pid = re.search(r"Worker PID: (\d+)", message)
            if pid is None and "retries remaining" in message:
                log.debug("Ray: %s", message)  # a retry of a lost worker's task: said above
            elif pid is None:
                first = next((line.strip() for line in message.splitlines() if line.strip()), "")
                log.warning("Ray: %s", first)
            elif pid.group(1) not in reported:
                reported.add(pid.group(1))
                log.warning("a Ray worker was lost (pid %s)", pid.group(1))

    relay.alphacut_relay = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = relay


def _connect(ray: Any, ray_options: RayOptions) -> bool:
    """Join or start a cluster; True when this call started a local one."""
    _relay_cluster_errors()
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
    # Ray Client's server starts a server process for each client; on a busy head node that
    # start can race its own short-lived launcher (psutil.ZombieProcess in the proxier), and
    # the connect fails although the cluster is fine. A few tries ride that out; a direct
    # address gets one, since Ray itself waits for its GCS.
    tries = _CLIENT_CONNECT_TRIES if address.startswith("ray://") else 1
    for attempt in range(1, tries + 1):
        try:
            ray.init(address=address, **common)
            return False
        except ConnectionError as exc:
            if attempt == tries:
                raise ClusterUnavailable(
                    f"cannot join the Ray cluster at {address!r}: {last_line(exc)}"
                ) from None
            log.info("joining %s failed (%s); trying again", address, last_line(exc))
            time.sleep(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _run(
    ray: Any, recipe: RemoverRecipe, todo: list[Task], ray_options: RayOptions
) -> Iterator[BatchItem]:
    rows = [
        {"index": i, "source": _absolute(t.source), "destination": _absolute(t.destination)}
        for i, t in enumerate(todo)
    ]
    yield from account_for_every_task(todo, _rows_with_reruns(ray, recipe, rows, ray_options))


def _rows_with_reruns(
    ray: Any, recipe: RemoverRecipe, rows: list[dict[str, Any]], ray_options: RayOptions
) -> Iterator[dict[str, Any]]:
    """The result rows; when the job loses a worker, the rows not back yet run again on a
    fresh pool, up to `reruns` times. An output the lost job did write meanwhile (atomically,
    so whole) is counted as done rather than written a second time."""
    started = time.time()
    seen: set[int] = set()
    left = rows
    for attempt in range(ray_options.reruns + 1):
        try:
            if ray.util.client.ray.is_connected():
                results = _through_client(ray, recipe, left, ray_options)
            else:
                results = _pipeline(recipe, left, ray_options)
            for row in results:
                seen.add(int(row["index"]))
                yield row
            return
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            if attempt == ray_options.reruns:
                raise
            for row in left:
                if row["index"] not in seen and _written_since(row["destination"], started):
                    seen.add(row["index"])
                    yield {**row, "status": "done", "error": "", "error_type": "", "seconds": 0.0}
            left = [row for row in left if row["index"] not in seen]
            log.warning(
                "the Ray job lost a worker (%s); running the %d files left again",
                last_line(exc), len(left),
            )  # fmt: skip
            if not left:
                return


def _written_since(destination: str, started: float) -> bool:
    place = location(destination)
    try:
        return isinstance(place, Path) and place.stat().st_mtime >= started
    except OSError:
        return False


def account_for_every_task(
    todo: list[Task], results: Iterator[dict[str, Any]]
) -> Iterator[BatchItem]:
    """One `BatchItem` per planned task, whatever came back: a row seen twice (a retried
    block) counts once, and a task whose row never came back is a failure with its own
    line, never a silent gap in the summary."""
    seen: set[int] = set()
    for row in results:
        index = int(row["index"])
        if index in seen:
            continue
        seen.add(index)
        yield BatchItem(
            todo[index],
            row["status"],
            row["error"] or None,
            row["error_type"] or None,
            row["seconds"],
        )
    for index, task in enumerate(todo):
        if index not in seen:
            yield BatchItem(
                task,
                "failed",
                "the Ray job returned no result for this file (a lost worker?); a rerun resumes it",
                "InferenceError",
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
    # A failed block is raised to the driver, which reports it (or runs it again) itself.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
    actors = ray_options.actors or max(1, math.floor(cpus / ray_options.cpus_per_actor))
    # An actor without a file would only load a model for nothing (and Ray Data warns that
    # the pool cannot be used fully).
    actors = min(actors, len(rows))
    # Small blocks keep every actor busy to the end and the progress bar moving.
    rows_per_block = max(1, min(64, len(rows) // (actors * 16)))
    dataset: Any = ray.data.from_items(
        rows, override_num_blocks=math.ceil(len(rows) / rows_per_block)
    )
    with warnings.catch_warnings():
        # Ray Data takes max_restarts only among its `ray_remote_args`, which it deprecates
        # (2.60) without a named parameter in their place yet.
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
        dataset = dataset.map_batches(
            RemoveFiles,
            fn_constructor_kwargs={"recipe": recipe},
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=ray_options.cpus_per_actor,
            num_gpus=ray_options.gpus_per_actor or None,
            batch_size=1,
            batch_format="numpy",
            max_restarts=ray_options.actor_restarts,
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
