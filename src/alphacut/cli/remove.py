"""`alphacut remove`: files, folders, globs or stdin in; cutouts out."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import InputNotFound
from ..options import RemoveOptions
from ..storage import ObjectPath, location, write_whole
from .choice import ModelFlags, model_flags

if TYPE_CHECKING:
    from ..batch import BatchItem, Plan
    from ..remover import Remover

_SUFFIX_FORMATS = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}
# Names of media alphacut does not write, which Pillow may not list either.
_OTHER_MEDIA = frozenset(
    {".heic", ".heif", ".avif", ".svg", ".pdf", ".mp4", ".mov", ".webm", ".mkv", ".avi"}
)


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
    help="Run the batch here (a thread pool) or on a Ray cluster (needs alphacut[ray]; "
    "-j then sets the number of actors).",
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
@model_flags()
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

    One input file and -o NAME.png/.webp/.jpg writes that file; an existing one is refused
    unless --overwrite, and an input is never overwritten. Otherwise outputs mirror the
    input tree under the -o folder as <name>.png (or the chosen format); existing outputs
    are skipped unless --overwrite, so an interrupted batch resumes where it stopped. Bad
    files are reported one line each and the batch goes on; the exit code is 1 when any
    input failed or nothing was written.
    """
    started = time.perf_counter()  # the summary's rate counts model loading and INT8 builds
    target = location(output) if output is not None else None
    chosen_format = flags.settings.get("output_format")
    if target is None and inputs != ("-",):
        _explain_missing_output(inputs)
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (stdin) cannot be combined with other inputs")
    single_file = _single_file_target(inputs, target)
    batch = not single_file and inputs != ("-",)
    one_output = single_file or (inputs == ("-",) and target is not None and str(target) != "-")
    if one_output:
        assert target is not None
        _check_file_name(target, chosen_format)
    if batch:
        assert target is not None
        _check_folder_name(target, inputs)
    if engine == "ray" and not batch:
        raise click.UsageError("--engine ray runs batches: give files, folders or globs and -o DIR")
    workers = flags.jobs or _default_jobs()
    recipe = flags.recipe(
        workers=workers if batch else None,
        output_format=_file_format(target) if target is not None and not batch else None,
    )
    if one_output:  # flags first, then the files: both before any work
        from ..batch.outputs import check_new_output

        assert target is not None
        sources = [] if inputs == ("-",) else [location(inputs[0])]
        _require_input(sources)
        check_new_output(target, sources=sources, overwrite=overwrite)
    if engine == "ray":
        from ..engines.ray import RayOptions, run_batch_ray

        assert target is not None
        ray_options = RayOptions(address=ray_address, actors=flags.jobs, cpus_per_actor=ray_cpus)
        plan = _plan(inputs, target, recipe.options)
        items = run_batch_ray(recipe, plan, overwrite=overwrite, ray_options=ray_options)
        ctx.exit(_batch_exit(report_batch(items, plan, target, progress, started), overwrite))
    remover = recipe.build()
    if flags.fast:
        loading = time.perf_counter()
        description = remover.load().description
        click.echo(
            f"alphacut: fast path: {description} (ready in {time.perf_counter() - loading:.1f}s)",
            err=True,
        )

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
        ctx.exit(_batch_exit(report_batch(items, plan, target, progress, started), overwrite))


def _plan(inputs: tuple[str, ...], target: Path | ObjectPath, options: RemoveOptions) -> Plan:
    from ..batch import plan_batch

    plan = plan_batch(list(inputs), target, options)
    if not plan.tasks and not plan.unmatched:
        raise InputNotFound(f"found no files in {', '.join(inputs)}")
    return plan


def _default_jobs() -> int:
    from ..batch import default_jobs

    return default_jobs()


def _suffix(target: Path | ObjectPath) -> str:
    return Path(target.name).suffix.lower()


def _looks_like_a_file(target: Path | ObjectPath) -> bool:
    """True for a name with a media suffix (out.png, x.gif, clip.mp4): meant as a file,
    never to be made into a folder."""
    suffix = _suffix(target)
    if suffix in _SUFFIX_FORMATS or suffix in _OTHER_MEDIA:
        return True
    from PIL import Image

    Image.init()
    return suffix in Image.registered_extensions()


def _single_file_target(inputs: tuple[str, ...], output: Path | ObjectPath | None) -> bool:
    """One input that is not a folder or a pattern, and an output named like a file."""
    if len(inputs) != 1 or inputs[0] == "-" or output is None or str(output) == "-":
        return False
    if isinstance(output, Path) and output.is_dir():
        return False
    if not _looks_like_a_file(output):
        return False
    source = location(inputs[0])
    if isinstance(source, Path):
        return not source.is_dir() and not _is_pattern(inputs[0], source)
    if any(ch in source.key for ch in "*?["):
        return False
    return not source.is_dir()


def _is_pattern(text: str, path: Path) -> bool:
    return any(ch in text for ch in "*?[") and not path.exists()


def _check_file_name(target: Path | ObjectPath, chosen_format: str | None) -> None:
    suffix = _suffix(target)
    if suffix not in _SUFFIX_FORMATS:
        raise click.UsageError(
            f"cannot write {target.name!r}: alphacut writes PNG, WebP and JPEG images "
            f"(name the output .png, .webp, .jpg or .jpeg)"
        )
    if chosen_format is not None and _SUFFIX_FORMATS[suffix] != chosen_format:
        wanted = next(s for s, f in _SUFFIX_FORMATS.items() if f == chosen_format)
        raise click.UsageError(
            f"-o {target.name} names a {_SUFFIX_FORMATS[suffix].upper()} file but --format is "
            f"{chosen_format}: name it {Path(target.name).stem}{wanted}, or leave --format out"
        )


def _file_format(target: Path | ObjectPath) -> str | None:
    return _SUFFIX_FORMATS.get(_suffix(target)) if str(target) != "-" else None


def _check_folder_name(target: Path | ObjectPath, inputs: tuple[str, ...]) -> None:
    """A batch writes into a folder: refuse, before any work, an -o that is a file or is
    named like one (it would become a folder named x.png)."""
    what = "a folder, a pattern or several inputs" if len(inputs) == 1 else "several inputs"
    if isinstance(target, Path) and target.exists() and not target.is_dir():
        raise click.UsageError(f"-o {target} is an existing file, but {what} need an output folder")
    if _looks_like_a_file(target) and not (isinstance(target, Path) and target.is_dir()):
        if _suffix(target) in _SUFFIX_FORMATS:
            raise click.UsageError(
                f"-o {target} names a file, but {what} need an output folder "
                "(for one file, give one input file)"
            )
        raise click.UsageError(
            f"cannot write {target.name!r}: alphacut writes PNG, WebP and JPEG images "
            "into an output folder (give -o a folder name without a suffix)"
        )


def _require_input(sources: list[Path | ObjectPath]) -> None:
    for source in sources:
        if isinstance(source, Path) and not (source.exists() or source.is_symlink()):
            raise InputNotFound("no such file", source=str(source))


def _explain_missing_output(inputs: tuple[str, ...]) -> None:
    last = inputs[-1]
    if len(inputs) == 2 and _looks_like_a_file(location(last)) and not Path(last).exists():
        raise click.UsageError(
            f"{last} was read as an input, and it does not exist; to write one file, name the "
            f"output with -o: alphacut remove {inputs[0]} -o {last}"
        )
    raise click.UsageError("--output/-o is required for files, folders and globs")


def _batch_exit(counts: Counter[str], overwrite: bool) -> int:
    """0 only when the batch wrote something and nothing failed."""
    if counts["failed"]:
        return 1
    if not counts["done"]:
        click.echo(
            "alphacut: nothing written: every output already exists "
            + ("" if overwrite else "(--overwrite redoes them)"),
            err=True,
        )
        return 1
    return 0


def _run_stdin(remover: Remover, output: Path | ObjectPath | None) -> None:
    data = sys.stdin.buffer.read()
    result = remover.remove_bytes(data)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
    else:
        write_whole(output, result)
        click.echo(f"alphacut: wrote {output}", err=True)


def failure_line(item: BatchItem) -> str:
    """The one line a failed file gets, the same from every engine and from `watch`."""
    return f"alphacut: failed: {item.task.source}: {item.error} [{item.error_type}]"


def report_batch(
    items: Iterator[BatchItem],
    plan: Plan,
    output: Path | ObjectPath,
    progress: bool | None,
    started: float | None = None,
) -> Counter[str]:
    """Show the bar, a line per failed file and the summary; returns the count of each
    status. On Ctrl-C the files in flight finish and are counted, the summary says
    "interrupted", and the command exits 130 with no second line."""
    from tqdm import tqdm

    total = len(plan.tasks) + len(plan.unmatched)
    counts: Counter[str] = Counter()
    started = time.perf_counter() if started is None else started
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True)

    def note(item: BatchItem) -> None:
        counts[item.status] += 1
        if item.status == "failed":
            tqdm.write(failure_line(item), file=sys.stderr)
        bar.update(1)
        bar.set_postfix(failed=counts["failed"], refresh=False)

    try:
        for item in items:
            note(item)
    except KeyboardInterrupt:
        _drain(items, note)
        bar.close()
        _summary(counts, total, started, output, interrupted=True)
        raise click.exceptions.Exit(130) from None
    bar.close()
    _summary(counts, total, started, output)
    return counts


def _drain(items: Iterator[BatchItem], note: Callable[[BatchItem], None]) -> None:
    """After Ctrl-C, let the runner finish the files it has started and count them: it
    yields those and then re-raises (a runner already finished raises at once)."""
    throw = getattr(items, "throw", None)
    if throw is None:
        return
    try:
        note(throw(KeyboardInterrupt()))
        for item in items:
            note(item)
    except (KeyboardInterrupt, StopIteration):
        pass


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
