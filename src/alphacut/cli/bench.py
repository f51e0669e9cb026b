"""`alphacut bench`: per-stage timings and throughput, against rembg when it is installed."""

from __future__ import annotations

from pathlib import Path

import click

_DEFAULT_IMAGES = Path("tests/data/photos")


@click.command("bench")
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=_DEFAULT_IMAGES,
    show_default=True,
    help="Folder of photos to run.",
)
@click.option(
    "--against",
    type=click.Choice(["rembg", "none"]),
    default="rembg",
    show_default=True,
    help="Engine to compare with in the same run (skipped when not importable).",
)
@click.option("-m", "--model", default="u2netp", show_default=True)
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 64), help="alphacut workers. [default: one per core]"
)
@click.option(
    "--components/--no-components",
    default=True,
    show_default=True,
    help="Also time the PNG encoder against Pillow's, model loading from the saved graph, and "
    "the graph rewrite against ONNX Runtime's own graph.",
)
def bench_command(
    images: Path, against: str, model: str, rounds: int, jobs: int | None, components: bool
) -> None:
    """Time decode, prepare, infer, mask, compose and encode; print images per second, peak RSS,
    the machine, and the ratio against rembg, measured side by side in one run."""
    import importlib.util

    from .._system import usable_cores
    from ..bench.pipeline import run_benchmark

    rival = None if against == "none" else against
    if rival and importlib.util.find_spec(rival) is None:
        click.echo(
            f"alphacut: {rival} is not importable here; benchmarking alphacut alone", err=True
        )
        rival = None
    for line in run_benchmark(
        images, against=rival, model=model, rounds=rounds, jobs=jobs or usable_cores()
    ):
        click.echo(line)
    if components:
        from ..bench.components import run_components
        from ..bench.pipeline import image_sets

        ordinary = image_sets(images)["ordinary"]
        for line in run_components(
            ordinary, model=model, rounds=max(rounds, 3), cores=usable_cores()
        ):
            click.echo(line)
