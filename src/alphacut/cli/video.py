"""`alphacut video`: videos in; alpha video, composited video or PNG frames out."""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from ..options import RemoveOptions, RuntimeOptions
from .choice import cli_limits
from .params import chosen_settings, runtime_flags, settings_options

# Image encodings have no meaning for a video; --format names the container here.
_IMAGE_ONLY = frozenset(
    {"output_format", "png_compress_level", "quality", "keep_icc_profile", "hints"}
)


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
@click.option(
    "--format",
    "video_format",
    type=click.Choice(["webm", "mov", "mp4", "gif", "png", "webp"]),
    help="Output format; png and webp write a folder of frames. [default: from the suffix; "
    "webm for several inputs]",
)
@click.option(
    "--codec",
    type=click.Choice(["prores", "qtrle"]),
    help="For .mov: ProRes 4444 (default) or QuickTime Animation (lossless, larger).",
)
@click.option(
    "--background-video",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Composite onto this video (looped or cut to length), e.g. for .mp4.",
)
@click.option("-m", "--model", default=None, help="Registered model name. [default: u2netp]")
@click.option(
    "--model-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A custom ONNX model file.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    help="Frames in the model at once, each inference on its share of the cores. "
    "[default: one per core]",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Frames per model run, through a dynamic-batch copy of the model (same masks). "
    "Pays on a GPU; on a CPU one frame per run on each core is faster (7.8 against 6.3 fps "
    "at --batch 4, 640x360, 2 cores).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1),
    help="Refuse videos whose frames are larger than this many pixels. [env: ALPHACUT_MAX_PIXELS]",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace outputs that already exist (default: skip them)."
)
@click.option(
    "--audio/--no-audio",
    default=True,
    show_default=True,
    help="Keep the sound: copied where the container takes its codec, else transcoded "
    "(Opus in WebM, AAC in MOV/MP4). PNG frames have none.",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0.01, max=1000),
    help="Frame rate of an image-sequence input (a folder, glob or %d pattern). [default: 25]",
)
@click.option(
    "--smooth/--no-smooth",
    default=True,
    show_default=True,
    help="Steady the masks over time: each is averaged with its neighbours' masks carried "
    "along the optical flow (no ghosting behind motion). --no-smooth cuts each frame alone.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar. [default: when stderr is a terminal]",
)
@settings_options(skip=_IMAGE_ONLY)
@runtime_flags
@click.pass_context
def video_command(
    ctx: click.Context,
    /,
    inputs: tuple[Path, ...],
    output: Path,
    video_format: str | None,
    codec: str | None,
    background_video: Path | None,
    model: str | None,
    model_path: Path | None,
    providers: tuple[str, ...] | None,
    backend: str | None,
    fast: bool,
    accept_licenses: tuple[str, ...],
    jobs: int | None,
    batch: int,
    max_pixels: int | None,
    overwrite: bool,
    audio: bool,
    smooth: bool,
    fps: float | None,
    progress: bool | None,
    **settings: Any,
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
    from ..batch.outputs import output_taken
    from ..errors import AlphacutError
    from ..remover import Remover
    from ..video import Smoothing, VideoOptions

    options = RemoveOptions(**chosen_settings(settings))
    targets = _targets(inputs, output, video_format)
    _check_outputs(targets, overwrite)
    from .._system import thread_share, usable_cores

    # Frames run side by side, each inference on its share of the cores: measured 7.6 fps
    # against 6.3 with every inference on all cores (oversubscribed) and 7.0 one at a time.
    workers = jobs or usable_cores()
    runtime = RuntimeOptions(
        providers=providers,
        backend=backend,  # type: ignore[arg-type]
        fast=fast,
        # A recurrent model sees one frame at a time, in order: it gets every core.
        intra_op_threads=None if _recurrent(model) else thread_share(workers),
    )
    runtime.check_batch(batch, "--batch")
    remover = Remover(
        model,
        model_path=model_path,
        options=options,
        runtime=runtime,
        limits=cli_limits(max_pixels),
        accept_licenses=accept_licenses,
    )
    if fast:
        click.echo(f"alphacut: fast path: {remover.load().description}", err=True)
    if smooth:
        from ..video.smooth import require_cv2

        # The model's threads have the cores; OpenCV's own pool would only fight them.
        require_cv2().setNumThreads(1)
    video = VideoOptions(
        format=video_format,
        codec=codec,
        background=background_video,
        batch=batch,
        smoothing=Smoothing() if smooth else None,
        audio=audio,
        rate=Fraction(fps).limit_denominator(1001) if fps else None,
    )
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


def _recurrent(model: str | None) -> bool:
    from ..models.registry import MODELS

    spec = MODELS.get(model or "")
    return spec is not None and spec.kind == "recurrent"


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
