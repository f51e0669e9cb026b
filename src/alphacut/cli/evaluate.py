"""`alphacut eval`: score a model's masks against ground truth or a reference model."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .params import runtime_flags

if TYPE_CHECKING:
    from ..evaluate import ImageResult


@click.command("eval")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "report_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.html, metrics.json and plot.png (created if missing).",
)
@click.option(
    "-m",
    "--model",
    default=None,
    help="Registered model name to evaluate. [default: u2net; env: ALPHACUT_MODEL]",
)
@click.option(
    "--model-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="ONNX file to evaluate (with --model: that model's preprocessing).",
)
@click.option(
    "--gt",
    "gt_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of ground-truth masks matched to IMAGES by file stem (any image format; "
    "the alpha channel if it has one, else grey levels). Needs alphacut[eval].",
)
@click.option(
    "--reference-model",
    default=None,
    help="Registered model to compare with (e.g. the FP32 original of an INT8 model).",
)
@click.option(
    "--reference-model-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="ONNX file to compare with, preprocessed as --reference-model, else as --model.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar. [default: when stderr is a terminal]",
)
@runtime_flags
@click.pass_context
def eval_command(
    ctx: click.Context,
    /,
    images: tuple[str, ...],
    report_dir: Path,
    model: str | None,
    model_path: Path | None,
    gt_dir: Path | None,
    reference_model: str | None,
    reference_model_path: Path | None,
    providers: tuple[str, ...] | None,
    backend: str | None,
    fast: bool,
    accept_licenses: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Score the masks a model predicts for IMAGES (files, folders, globs) against
    ground-truth masks (--gt: MAE, max F-measure, S-measure, mean and max E-measure) or
    against another model (--reference-model[-path]: IoU at alpha >= 128 and MAE).

    Prints one summary line per metric and writes report.html, metrics.json and plot.png
    to --output. Images that cannot be scored (unreadable, no ground truth) are reported
    one line each and the run goes on; the exit code is then 1.
    """
    has_reference = reference_model is not None or reference_model_path is not None
    if (gt_dir is not None) == has_reference:
        raise click.UsageError("pass either --gt DIR or --reference-model / --reference-model-path")

    from tqdm import tqdm

    from ..evaluate import (
        collect_images,
        evaluate_ground_truth,
        evaluate_reference,
        summary_rows,
        write_report,
    )
    from ..metrics import require_sod_metrics
    from .choice import ModelFlags

    if gt_dir is not None:
        require_sod_metrics()  # fail before loading any model
    samples = collect_images(images, report_dir=report_dir)
    flags = ModelFlags(
        model=model,
        model_path=model_path,
        providers=providers,
        backend=backend,
        fast=fast,
        accept_licenses=accept_licenses,
    )
    recipe = flags.recipe(workers=None)
    session = recipe.build().load()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=len(samples), unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True
    )

    def on_result(result: ImageResult) -> None:
        if not result.ok:
            tqdm.write(
                f"alphacut: failed: {result.name}: {result.error} [{result.error_type}]",
                file=sys.stderr,
            )
        bar.update(1)

    limits = recipe.limits
    try:
        if gt_dir is not None:
            report = evaluate_ground_truth(
                samples, session, gt_dir, limits=limits, on_result=on_result
            )
        else:
            # A bare reference file (an FP32 original, say) is preprocessed like --model.
            base = reference_model if reference_model is not None else model
            against = dataclasses.replace(flags, model=base, model_path=reference_model_path)
            reference = against.recipe(workers=None).build().load()
            report = evaluate_reference(
                samples, session, reference, limits=limits, on_result=on_result
            )
    finally:
        bar.close()
    files = write_report(report, report_dir)

    scored = len(report.images) - len(report.failed)
    click.echo(
        f"{report.model} against {report.against}: {scored} of {len(report.images)} images "
        f"scored in {report.seconds:.1f}s"
    )
    rows = summary_rows(report)
    width = max((len(r.label) for r in rows), default=0)
    for row in rows:
        click.echo(f"  {row.label:<{width}}  {row.value:.4f}  ({row.note})")
    click.echo(f"report: {files.html}")
    ctx.exit(1 if report.failed else 0)
