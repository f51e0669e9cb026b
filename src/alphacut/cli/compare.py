"""`alphacut truth` makes a truth set with exact alpha; `alphacut compare` measures models on
it and writes report.md, report.html and metrics.json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..evaluate.compare import ModelResult

DEFAULT_AGREEING = "u2net,isnet-general-fp16,u2netp"


def _files(inputs: tuple[str, ...], output: Path) -> list[Path]:
    from ..evaluate import collect_images

    found = collect_images(inputs, report_dir=output)
    for sample in found:
        if sample.problem:
            raise click.UsageError(sample.problem)
    return [sample.path for sample in found]


@click.command("truth")
@click.argument("photos", nargs=-1, required=True)
@click.option(
    "-b",
    "--backgrounds",
    "backgrounds",
    multiple=True,
    required=True,
    help="Background photos (files, folders, globs; repeatable), none of them a subject photo.",
)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--agree",
    default=DEFAULT_AGREEING,
    show_default=True,
    help="Models whose agreement makes each trimap (comma-separated, at least two).",
)
@click.option("--pixels", default=750_000, show_default=True, help="Size of each composite.")
@click.option("--per-photo", default=2, show_default=True, help="Backgrounds per photo.")
@click.option(
    "--held-out",
    default=0.3,
    show_default=True,
    help="Share of backgrounds held out; photos are held out unless --fast was calibrated on them.",
)
def truth_command(
    photos: tuple[str, ...],
    backgrounds: tuple[str, ...],
    output: Path,
    agree: str,
    pixels: int,
    per_photo: int,
    held_out: float,
) -> None:
    """Make a truth set: each photo's matte (a trimap where every --agree model is sure, solved
    by closed-form matting) composited over other backgrounds. Needs alphacut[matting,video]."""
    from ..evaluate.truth_set import make_truth_set
    from ..models import Session
    from ..remover import Remover

    subjects, plates = _files(photos, output), _files(backgrounds, output)
    overlap = {p.resolve() for p in subjects} & {p.resolve() for p in plates}
    if overlap:
        raise click.UsageError(f"a photo cannot be its own background: {sorted(overlap)[0]}")
    names = [name.strip() for name in agree.split(",") if name.strip()]
    if len(names) < 2:
        raise click.UsageError("--agree needs at least two models: a trimap is where they agree")
    sessions: list[Session] = [Remover(name).session for name in names]
    problems: list[str] = []

    def skipped(path: Path, why: str) -> None:
        problems.append(f"alphacut: {path}: {why}")
        click.echo(problems[-1], err=True)

    made = make_truth_set(
        subjects,
        plates,
        output,
        sessions,
        pixels=pixels,
        per_photo=per_photo,
        held_out=held_out,
        on_sample=lambda s: click.echo(f"{s.name}{' (held out)' if s.held_out else ''}", err=True),
        on_problem=skipped,
    )
    click.echo(f"alphacut: wrote {len(made.samples)} composites with exact alpha to {output}")
    if problems or not made.samples:
        click.echo(f"alphacut: {len(problems)} file(s) left out", err=True)
        sys.exit(1)


@click.command("compare")
@click.argument("truth", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="A model to compare, alone or with --fast or --refine MODE: -m u2netp -m 'u2net --refine auto'.",
)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--photos",
    multiple=True,
    help="Real photos (no truth) on which to report how far the models agree with each other.",
)
@click.option("--threads", default="1,2", show_default=True, help="Thread counts to time.")
def compare_command(
    truth: Path, models: tuple[str, ...], output: Path, photos: tuple[str, ...], threads: str
) -> None:
    """Measure models on a truth set (alphacut truth): SAD, MSE, gradient, connectivity, IoU,
    boundary F, speed at each thread count, peak memory, size, load time, licence, source."""
    from ..bench.pipeline import machine_description
    from ..evaluate.compare import compare_models, parse_variant
    from ..evaluate.compare_report import write_compare_report
    from ..evaluate.truth_set import load_truth_set
    from ..models import MODELS, find_model

    variants = [parse_variant(text) for text in models]
    try:
        counts = tuple(int(n) for n in threads.split(",") if n.strip())
    except ValueError:
        raise click.BadParameter(
            f"{threads!r}: thread counts such as 1,2", param_hint="--threads"
        ) from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{threads!r}: thread counts such as 1,2", param_hint="--threads")
    truth_set = load_truth_set(truth)

    def said(result: ModelResult) -> None:
        if result.error:
            click.echo(f"alphacut: {result.variant.label}: {result.error}", err=True)
        else:
            click.echo(
                f"{result.variant.label}: SAD {result.mean('sad'):.2f}, IoU {result.mean('iou'):.3f}",
                err=True,
            )

    results = compare_models(
        variants,
        truth,
        output / "previews",
        threads=counts,
        photos=_files(photos, output) if photos else (),
        on_result=said,
    )
    compared = {v.model for v in variants}
    not_measured = {
        name: "not in the model cache here" if find_model(spec) is None else "not asked for"
        for name, spec in MODELS.items()
        if spec.segments and not spec.is_custom and name not in compared
    }
    files = write_compare_report(
        results, truth_set, output, machine=machine_description(), not_measured=not_measured
    )
    click.echo(f"alphacut: wrote {files.markdown} and {files.html}")
    if any(r.error for r in results):
        sys.exit(1)
