"""`alphacut remove`: files, folders, globs or stdin in; cutouts out."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..engines.storage import ObjectPath, location, write_whole
from ..options import RemoveOptions
from .choice import ModelFlags, model_flags

if TYPE_CHECKING:
    from ..batch import BatchItem, Plan
    from ..remover import Remover

_SUFFIX_FORMATS = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}


@click.command("remove")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    help="Output folder or s3://bucket/prefix/ (or a file, for one input with an image "
    "suffix). '-' or absent with stdin: stdout.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace outputs that already exist (default: skip them, so runs resume).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run the batch here (a thread pool) or on a Ray cluster (needs alphacut[ray]).",
)
@click.option(
    "--ray-address",
    metavar="ADDR",
    help="With --engine ray: 'auto' (a running cluster), host:port, or ray://host:10001 "
    "(Ray Client). [default: $RAY_ADDRESS, else a local cluster]",
)
@click.option(
    "--ray-cpus",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="With --engine ray: CPUs per actor, which are also its inference threads.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar. [default: when stderr is a terminal]",
)
@model_flags
@click.pass_context
def remove_command(
    ctx: click.Context,
    /,
    inputs: tuple[str, ...],
    output: str | None,
    overwrite: bool,
    engine: str,
    ray_address: str | None,
    ray_cpus: float,
    progress: bool | None,
    flags: ModelFlags,
) -> None:
    """Remove the background of INPUT... (files, folders searched recursively, globs such as
    'photos/**/*.jpg', or - for stdin).

    Outputs mirror the input tree under --output as <name>.png (or the chosen format).
    Existing outputs are skipped unless --overwrite, so an interrupted batch resumes where it
    stopped. Bad files are reported one line each and the batch goes on; the exit code is 1
    when any input failed.
    """
    target = location(output) if output is not None else None
    single_file = _single_file_target(inputs, target)
    batch = not single_file and inputs != ("-",)
    if batch and target is None:
        raise click.UsageError("--output/-o is required for files, folders and globs")
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (stdin) cannot be combined with other inputs")
    if engine == "ray" and not batch:
        raise click.UsageError("--engine ray runs batches: give files, folders or globs and -o DIR")
    workers = flags.jobs or _default_jobs()
    recipe = flags.recipe(
        workers=workers if batch else None,
        output_format=_SUFFIX_FORMATS[_suffix(target)] if single_file and target else None,
    )
    if engine == "ray":
        from ..engines.ray import RayOptions, run_batch_ray

        assert target is not None
        ray_options = RayOptions(address=ray_address, actors=flags.jobs, cpus_per_actor=ray_cpus)
        plan = _plan(inputs, target, recipe.options)
        items = run_batch_ray(recipe, plan, overwrite=overwrite, ray_options=ray_options)
        ctx.exit(1 if report_batch(items, plan, target, progress) else 0)
    remover = recipe.build()
    if flags.fast:
        click.echo(f"alphacut: fast path: {remover.load().description}", err=True)

    if inputs == ("-",):
        _run_stdin(remover, target)
    elif single_file:
        from ..batch import Task, process_task

        assert target is not None
        process_task(remover, Task(location(inputs[0]), target), remover.options)
        click.echo(f"alphacut: wrote {target}", err=True)
    else:
        from ..batch import run_batch

        assert target is not None
        plan = _plan(inputs, target, remover.options)
        items = run_batch(remover, plan, remover.options, overwrite=overwrite, jobs=workers)
        ctx.exit(1 if report_batch(items, plan, target, progress) else 0)


def _plan(inputs: tuple[str, ...], target: Path | ObjectPath, options: RemoveOptions) -> Plan:
    from ..batch import plan_batch

    return plan_batch(list(inputs), target, options)


def _default_jobs() -> int:
    from ..batch import default_jobs

    return default_jobs()


def _suffix(target: Path | ObjectPath) -> str:
    return Path(target.name).suffix.lower()


def _single_file_target(inputs: tuple[str, ...], output: Path | ObjectPath | None) -> bool:
    if len(inputs) != 1 or inputs[0] == "-" or output is None or str(output) == "-":
        return False
    if _suffix(output) not in _SUFFIX_FORMATS:
        return False
    source = location(inputs[0])
    if isinstance(source, Path):
        is_file = source.is_file()
    else:
        is_file = not any(ch in source.key for ch in "*?[") and source.exists()
        is_file = is_file and not source.is_dir()
    return is_file and not (isinstance(output, Path) and output.is_dir())


def _run_stdin(remover: Remover, output: Path | ObjectPath | None) -> None:
    data = sys.stdin.buffer.read()
    result = remover.remove_bytes(data)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
    else:
        write_whole(output, result)


def failure_line(item: BatchItem) -> str:
    """The one line a failed file gets, the same from every engine and from `watch`."""
    return f"alphacut: failed: {item.task.source}: {item.error} [{item.error_type}]"


def report_batch(
    items: Iterator[BatchItem],
    plan: Plan,
    output: Path | ObjectPath,
    progress: bool | None,
) -> int:
    """Show the bar, a line per failed file and the summary; returns the failures."""
    from tqdm import tqdm

    total = len(plan.tasks) + len(plan.unmatched)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True)
    try:
        for item in items:
            counts[item.status] += 1
            if item.status == "failed":
                tqdm.write(failure_line(item), file=sys.stderr)
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)
    except KeyboardInterrupt:
        bar.close()
        _summary(counts, total, started, output, interrupted=True)
        raise
    bar.close()
    _summary(counts, total, started, output)
    return counts["failed"]


def _summary(
    counts: Counter[str],
    total: int,
    started: float,
    output: Path | ObjectPath,
    interrupted: bool = False,
) -> None:
    elapsed = time.perf_counter() - started
    rate = counts["done"] / elapsed if elapsed > 0 else 0.0
    state = "interrupted: " if interrupted else ""
    click.echo(
        f"alphacut: {state}{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
        f"of {total} in {elapsed:.1f}s ({rate:.2f} img/s); outputs in {output}",
        err=True,
    )
