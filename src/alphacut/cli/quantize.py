"""`alphacut models quantize`: static INT8 quantisation, calibrated on a folder of photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_CHOICES = {
    "method": ("minmax", "entropy", "percentile"),
    "format": ("qdq", "qoperator"),
    "activations": ("u8", "s8"),
    "weights": ("u8", "s8"),
}


class NodeListType(click.ParamType):  # type: ignore[type-arg]
    """A comma-separated list of ONNX node names; an empty string means none."""

    name = "NODE,NODE,…"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        return tuple(part.strip() for part in str(value).split(",") if part.strip())


@click.command("quantize")
@click.argument("model")
@click.option(
    "--calibration",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of representative photos; each is prepared exactly as the pipeline does.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the INT8 model. [default: ./MODEL.int8.onnx]",
)
@click.option(
    "--method",
    type=click.Choice(_CHOICES["method"]),
    help="Activation ranges from: minmax (default), entropy (slow) or percentile (99.999).",
)
@click.option(
    "--format",
    "quant_format",
    type=click.Choice(_CHOICES["format"]),
    help="qdq: Q/DQ pairs that ONNX Runtime fuses (default); qoperator: QLinear ops.",
)
@click.option(
    "--activations",
    type=click.Choice(_CHOICES["activations"]),
    help="Activation type; u8 (default) is the fast one with VNNI.",
)
@click.option(
    "--weights",
    type=click.Choice(_CHOICES["weights"]),
    help="Weight type; s8 by default.",
)
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor, not per channel.")
@click.option(
    "--reduce-range/--full-range",
    default=None,
    help="7-bit weights, which a CPU without VNNI or AMX needs (its 8-bit sums saturate); "
    "--full-range for one that has them. [default: what this CPU needs]",
)
@click.option("--symmetric-activations", is_flag=True, help="Activation zero point fixed at 0.")
@click.option("--no-equalize", is_flag=True, help="Skip channel equalisation.")
@click.option("--no-exact-input", is_flag=True, help="Quantise the normalised input as it comes.")
@click.option("--no-float-head", is_flag=True, help="Quantise the side-output head as well.")
@click.option(
    "--float-nodes",
    type=NodeListType(),
    help="Nodes to keep in float, replacing the shipped recipe's list ('' for none).",
)
@click.option(
    "--search",
    is_flag=True,
    help="Search for the nodes to keep in float on the calibration photos (a few minutes).",
)
@click.option(
    "--evaluate",
    "evaluate_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Held-out photos: report mask IoU and end-to-end speed-up against FP32.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Intra-op threads for timing, the same for FP32 and INT8. [default: all cores]",
)
def quantize_command(
    model: str,
    calibration: Path,
    output: Path | None,
    method: str | None,
    quant_format: str | None,
    activations: str | None,
    weights: str | None,
    per_tensor: bool,
    reduce_range: bool | None,
    symmetric_activations: bool,
    no_equalize: bool,
    no_exact_input: bool,
    no_float_head: bool,
    float_nodes: tuple[str, ...] | None,
    search: bool,
    evaluate_dir: Path | None,
    threads: int | None,
) -> None:
    """Quantise MODEL (a registered name or an .onnx file) to INT8 with static calibration.

    Uses the recipe shipped for the model (which nodes stay in float, found offline with
    --search; see docs/int8.md); the flags change single parts of it.
    """
    import dataclasses

    from .._system import int8_dot_product
    from ..graphs.int8 import quantize_model
    from ..graphs.quantize import calibration_files, recipe_for, resolve_source
    from ..graphs.quantize_input import PIXELS

    spec, source = resolve_source(model)
    changes: dict[str, Any] = {
        "method": method,
        "format": quant_format,
        "activations": activations,
        "weights": weights,
        "float_nodes": float_nodes,
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    flags = {
        "per_channel": not per_tensor,
        "reduce_range": (not int8_dot_product()) if reduce_range is None else reduce_range,
        "symmetric_activations": symmetric_activations,
        "equalize": not no_equalize,
        "exact_input": not no_exact_input,
        "float_head": not no_float_head,
    }
    base = recipe_for(spec)
    changes.update({key: value for key, value in flags.items() if value != getattr(base, key)})
    recipe = dataclasses.replace(base, **changes)
    held_out = calibration_files(evaluate_dir, role="evaluation") if evaluate_dir else []
    if evaluate_dir and evaluate_dir.resolve() == calibration.resolve():
        click.echo("alphacut: warning: evaluating on the calibration photos", err=True)
    target = output or Path(f"{spec.name}.int8.onnx")
    result = quantize_model(
        source,
        calibration,
        target,
        recipe=recipe,
        search=search,
        evaluate=held_out,
        threads=threads,
        progress=lambda message: click.echo(f"alphacut: {message}", err=True),
    )
    pixel = sum(1 for n in result.float_nodes if n.startswith(PIXELS))
    head = sum(1 for n in result.float_nodes if n not in result.recipe.float_nodes) - pixel
    shown = ", ".join(n for n in result.float_nodes if n in result.recipe.float_nodes)
    pixel_note = f", {pixel} for the pixel-exact input" if pixel else ""
    ratio = result.output_bytes / max(result.source_bytes, 1)
    rows = [
        ("model", f"{spec.name} ({source})"),
        ("written", f"{result.output} in {result.seconds:.1f} s"),
        ("recipe", result.recipe.describe()),
        (
            "float nodes",
            f"{len(result.float_nodes)} ({head} in the head{pixel_note}; {shown or 'no others'})",
        ),
        ("equalised", f"{result.equalized_convs} convs"),
        (
            "calibration",
            f"{result.calibration_images} images, {result.metadata['calibration_digest']}",
        ),
        (
            "size",
            f"{result.source_bytes / 1e6:.2f} MB -> {result.output_bytes / 1e6:.2f} MB ({ratio:.0%})",
        ),
    ]
    evaluation = result.evaluation
    if evaluation is not None:
        rows.append(
            (
                "mask IoU",
                f"mean {evaluation.mean_iou:.4f}, worst {evaluation.worst_iou:.4f} "
                f"({evaluation.worst_image}) on {evaluation.images} images",
            )
        )
        rows.append(
            (
                "speed-up",
                f"{evaluation.speedup:.2f}x end to end (FP32 {evaluation.fp32_ms:.0f} ms, "
                f"INT8 {evaluation.int8_ms:.0f} ms per image; {evaluation.rounds} interleaved "
                f"rounds, threads: {evaluation.threads or 'all'})",
            )
        )
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        click.echo(f"{label.ljust(width)}  {text}")
