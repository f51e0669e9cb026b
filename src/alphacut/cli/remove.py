"""`alphacut remove`: files, folders, globs or stdin in; cutouts out."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from ..options import (
    Limits,
    RemoveOptions,
    RuntimeOptions,
    parse_extras,
)
from .params import chosen_settings, runtime_flags, settings_options

_SUFFIX_FORMATS = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}


@click.command("remove")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output folder (or file, for one input with an image suffix). '-' or absent with stdin: stdout.",
)
@click.option(
    "-m",
    "--model",
    default=None,
    help="Registered model name (see `alphacut models list`). [default: u2netp]",
)
@click.option(
    "--model-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A custom ONNX model file.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace outputs that already exist (default: skip them, so runs resume).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    help="Images processed at once. [default: one per core]",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1),
    help="Refuse images larger than this many pixels. [env: ALPHACUT_MAX_PIXELS]",
)
@click.option(
    "-x",
    "--extras",
    help='rembg\'s model options as JSON, e.g. \'{"sam_prompt": [{"type": "point", "data": [120, 80], '
    '"label": 1}]}\' or \'{"cc": "upper"}\'.',
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar. [default: when stderr is a terminal]",
)
@settings_options()
@runtime_flags
@click.pass_context
def remove_command(
    ctx: click.Context,
    /,
    inputs: tuple[str, ...],
    output: Path | None,
    model: str | None,
    model_path: Path | None,
    providers: tuple[str, ...] | None,
    backend: str | None,
    fast: bool,
    accept_licenses: tuple[str, ...],
    extras: str | None,
    overwrite: bool,
    jobs: int | None,
    max_pixels: int | None,
    progress: bool | None,
    **settings: Any,
) -> None:
    """Remove the background of INPUT... (files, folders searched recursively, globs such as
    'photos/**/*.jpg', or - for stdin).

    Outputs mirror the input tree under --output as <name>.png (or the chosen format).
    Existing outputs are skipped unless --overwrite, so an interrupted batch resumes where it
    stopped. Bad files are reported one line each and the batch goes on; the exit code is 1
    when any input failed.
    """
    from ..remover import Remover

    chosen = chosen_settings(settings)
    if extras:
        chosen.update(parse_extras(extras))
    single_file = _single_file_target(inputs, output)
    if single_file and "output_format" not in chosen and output is not None:
        chosen["output_format"] = _SUFFIX_FORMATS[output.suffix.lower()]
    options = RemoveOptions(**chosen)
    limits = Limits(max_pixels=max_pixels) if max_pixels else Limits.from_env()
    batch = not single_file and inputs != ("-",)
    if batch and output is None:
        raise click.UsageError("--output/-o is required for files, folders and globs")
    if "-" in inputs and len(inputs) > 1:
        raise click.UsageError("'-' (stdin) cannot be combined with other inputs")
    workers = jobs or _default_jobs()
    runtime = RuntimeOptions(
        providers=providers,
        backend=backend,  # type: ignore[arg-type]
        fast=fast,
        # Several images run at once in a batch, so each inference gets its share of cores.
        intra_op_threads=max(1, _default_jobs() // workers) if batch else None,
    )
    remover = Remover(
        model,
        model_path=model_path,
        options=options,
        runtime=runtime,
        limits=limits,
        accept_licenses=accept_licenses,
    )
    if fast:
        click.echo(f"alphacut: fast path: {remover.load().description}", err=True)

    if inputs == ("-",):
        _run_stdin(remover, output)
    elif single_file:
        assert output is not None
        remover.remove_file(inputs[0], output)
        click.echo(f"alphacut: wrote {output}", err=True)
    else:
        assert output is not None
        failed = _run_batch(remover, inputs, output, overwrite, workers, progress)
        ctx.exit(1 if failed else 0)


def _default_jobs() -> int:
    from ..batch import default_jobs

    return default_jobs()


def _single_file_target(inputs: tuple[str, ...], output: Path | None) -> bool:
    return (
        len(inputs) == 1
        and inputs[0] != "-"
        and Path(inputs[0]).is_file()
        and output is not None
        and output.suffix.lower() in _SUFFIX_FORMATS
        and not output.is_dir()
    )


def _run_stdin(remover: Any, output: Path | None) -> None:
    from ..imageio import atomic_write_bytes

    data = sys.stdin.buffer.read()
    result = remover.remove_bytes(data)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(output, result)


def _run_batch(
    remover: Any,
    inputs: tuple[str, ...],
    output: Path,
    overwrite: bool,
    jobs: int,
    progress: bool | None,
) -> int:
    from tqdm import tqdm

    from ..batch import plan_batch, run_batch

    plan = plan_batch(list(inputs), output, remover.options)
    total = len(plan.tasks) + len(plan.unmatched)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True)
    try:
        for item in run_batch(remover, plan, remover.options, overwrite=overwrite, jobs=jobs):
            counts[item.status] += 1
            if item.status == "failed":
                tqdm.write(
                    f"alphacut: failed: {item.task.source}: {item.error} [{item.error_type}]",
                    file=sys.stderr,
                )
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
    counts: Counter[str], total: int, started: float, output: Path, interrupted: bool = False
) -> None:
    elapsed = time.perf_counter() - started
    rate = counts["done"] / elapsed if elapsed > 0 else 0.0
    state = "interrupted: " if interrupted else ""
    click.echo(
        f"alphacut: {state}{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
        f"of {total} in {elapsed:.1f}s ({rate:.2f} img/s); outputs in {output}",
        err=True,
    )
