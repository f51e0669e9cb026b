"""`alphacut video`: videos in; alpha video, composited video or PNG frames out."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..video.options import VIDEO_SETTINGS
from .choice import ModelFlags, model_flags

F = TypeVar("F", bound=Callable[..., Any])

# Image encodings have no meaning for a video; --format names the container here.
_IMAGE_ONLY = frozenset(
    {"output_format", "png_compress_level", "quality", "keep_icc_profile", "hints"}
)


def _video_flags(command: F) -> F:
    """One click option per row of the video settings table (the HTTP fields share it)."""
    for row in reversed(VIDEO_SETTINGS):
        flag = "--" + row.name.replace("_", "-")
        kind: Any
        if row.kind is bool:
            command = click.option(
                f"{flag}/--no-{flag[2:]}", default=row.default, show_default=True, help=row.help
            )(command)
            continue
        if row.choices:
            kind = click.Choice(row.choices)
        elif row.kind is Path:
            kind = click.Path(exists=True, dir_okay=False, path_type=Path)
        elif row.bounds is not None and row.kind is int:
            kind = click.IntRange(int(row.bounds[0]), int(row.bounds[1]))
        elif row.bounds is not None:
            kind = click.FloatRange(row.bounds[0], row.bounds[1])
        else:
            kind = row.kind
        shown = row.default is not None
        command = click.option(
            flag, type=kind, default=row.default, show_default=shown, help=row.help
        )(command)
    return command


@click.command("video")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file (.webm, .mov, .mp4) or folder of PNG frames; for several inputs, a "
    "folder that receives one output per input.",
)
@_video_flags
@click.option(
    "--overwrite", is_flag=True, help="Replace outputs that already exist (default: skip them)."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar. [default: when stderr is a terminal]",
)
@model_flags(skip=_IMAGE_ONLY, frames=True)
@click.pass_context
def video_command(
    ctx: click.Context,
    /,
    inputs: tuple[Path, ...],
    output: Path,
    flags: ModelFlags,
    overwrite: bool,
    progress: bool | None,
    **chosen: Any,
) -> None:
    """Remove the background of every frame of INPUT... (any file PyAV decodes: mp4, mov,
    mkv, webm, avi, animated GIF or WebP; or an image sequence: a folder of frames, a quoted
    glob such as 'shots/*.png', or a pattern such as frame_%04d.png, played at --fps).

    .webm keeps the transparency as VP9 with alpha, .mov as ProRes 4444; .mp4 needs
    --bgcolor or --background-image; a folder gets one PNG per frame. Frame count and
    timestamps are kept. Outputs are written under a temporary name and renamed when
    complete. With several inputs a bad one is reported and the rest go on; the exit code
    is 1 when any failed.
    """
    from .._system import usable_cores
    from ..batch.outputs import output_taken
    from ..errors import AlphacutError
    from ..video.options import video_options

    video = video_options(chosen)
    targets = _targets(inputs, output, video.format)
    _check_outputs(targets, overwrite)
    # Frames run side by side, each inference on its share of the cores: measured 7.6 fps
    # against 6.3 with every inference on all cores (oversubscribed) and 7.0 one at a time.
    workers = flags.jobs or usable_cores()
    # A stateful (recurrent) model sees one frame at a time, in order: it gets every core.
    recipe = flags.recipe(workers=None if _stateful(flags.model) else workers)
    recipe.runtime.check_batch(video.batch, "--batch")
    remover = recipe.build()
    if flags.fast:
        click.echo(f"alphacut: fast path: {remover.load().description}", err=True)
    if video.smoothing is not None:
        from ..video.smooth import require_cv2

        # The model's threads have the cores; OpenCV's own pool would only fight them.
        require_cv2().setNumThreads(1)
    failed = skipped = 0
    started = time.perf_counter()
    for source, destination in targets:
        if output_taken(destination) and not overwrite:
            skipped += 1
            click.echo(
                f"alphacut: skipped: {destination} exists (--overwrite replaces it)", err=True
            )
            continue
        try:
            report = _run_one(remover, source, destination, video, workers, progress)
        except AlphacutError as exc:
            if len(targets) == 1:
                raise
            failed += 1
            reason = getattr(exc, "reason", str(exc))
            click.echo(f"alphacut: failed: {source}: {reason} [{exc.kind}]", err=True)
            continue
        click.echo(
            f"alphacut: wrote {report.destination}: {report.frames} frames at {report.fps:.3g} fps"
            f"{f', audio {report.audio}' if report.audio else ''} "
            f"in {report.seconds:.1f}s ({report.speed:.1f} frames/s)",
            err=True,
        )
    done = len(targets) - failed - skipped
    if len(targets) > 1:
        click.echo(
            f"alphacut: {done} of {len(targets)} videos done, {skipped} skipped, {failed} failed "
            f"in {time.perf_counter() - started:.1f}s",
            err=True,
        )
    if not done and not failed:
        click.echo("alphacut: nothing written: every output already exists", err=True)
    ctx.exit(0 if done and not failed else 1)


def _check_outputs(targets: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Before any frame: no output may be an input; one named output must be new (or
    --overwrite); several inputs skip outputs that exist, as batches do."""
    from ..batch.outputs import check_new_output, refuse_input_as_output

    sources = [source for source, _ in targets]
    for _, destination in targets:
        refuse_input_as_output(sources, destination)
    if len(targets) == 1:
        check_new_output(targets[0][1], overwrite=overwrite)


def _stateful(model: str | None) -> bool:
    from ..models.registry import MODELS

    spec = MODELS.get(model or "")
    return spec is not None and spec.traits.stateful


def _targets(
    inputs: tuple[Path, ...], output: Path, video_format: str | None
) -> list[tuple[Path, Path]]:
    if len(inputs) == 1:
        return [(inputs[0], output)]
    if output.suffix:
        raise click.UsageError("with several inputs, --output must be a folder")
    fmt = video_format or "webm"
    suffix = "" if fmt in ("png", "webp") else f".{fmt}"
    return [(source, output / f"{source.stem}{suffix}") for source in inputs]


def _run_one(
    remover: Any,
    source: Path,
    destination: Path,
    video: Any,
    jobs: int,
    progress: bool | None,
) -> Any:
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        unit="frame", desc=source.name, disable=not show, file=sys.stderr, dynamic_ncols=True
    )

    def advance(done: int, expected: int) -> None:
        if expected and bar.total != expected:
            bar.total = expected
        bar.update(done - bar.n)

    try:
        return remover.remove_video(source, destination, video=video, jobs=jobs, progress=advance)
    finally:
        bar.close()
