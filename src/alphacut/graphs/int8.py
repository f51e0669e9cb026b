"""`quantize_model`: one INT8 model from a float one, calibrated, checked and documented.

It joins the steps of `quantize` (workspace, recipe, calibration) with the optional
search and evaluation of `quantize_search`, and writes the provenance into the file.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .quantize import (
    METADATA_PREFIX,
    Progress,
    QuantRecipe,
    calibration_digest,
    calibration_files,
    open_workspace,
    prepared_tensors,
    recipe_for,
    resolve_source,
)
from .quantize_graph import require_onnx
from .quantize_search import Evaluation, evaluate_files, search_recipe

__all__ = ["QuantizeResult", "quantize_model"]

log = logging.getLogger("alphacut.models")


@dataclass(frozen=True)
class QuantizeResult:
    """What `quantize_model` did. Sizes are in bytes; `float_nodes` are all nodes kept in
    float (the recipe's and the head's); `metadata` is what was written into the file."""

    output: Path
    source: Path
    recipe: QuantRecipe
    float_nodes: tuple[str, ...]
    equalized_convs: int
    calibration_images: int
    source_bytes: int
    output_bytes: int
    seconds: float
    evaluation: Evaluation | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def quantize_model(
    model: str | Path,
    calibration: Path,
    output: Path,
    *,
    recipe: QuantRecipe | None = None,
    search: bool = False,
    evaluate: Sequence[Path] = (),
    threads: int | None = None,
    progress: Progress | None = None,
) -> QuantizeResult:
    """Quantise `model` (a registered name or an .onnx path) to INT8 into `output`.

    calibration: a folder of photos. recipe: None for the model's shipped recipe.
    search: run `quantize_search.search_recipe` instead of using the recipe's float nodes.
    evaluate: photos to compare the result with the FP32 model on (mask IoU and end-to-end
    speed, interleaved, with `threads` intra-op threads for both); the numbers go into the
    report and the file's metadata.
    """
    from .. import __version__
    from ..imagefile import atomic_write_bytes
    from ..models.store import file_checksum

    onnx = require_onnx()
    say = progress or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    spec, source = resolve_source(model)
    recipe = recipe or recipe_for(spec)
    files = calibration_files(calibration)
    say(f"calibrating on {len(files)} images from {calibration}")
    tensors = prepared_tensors(files, spec)
    with tempfile.TemporaryDirectory(prefix="alphacut-quantize-") as temp:
        work = open_workspace(
            source,
            spec,
            tensors,
            Path(temp),
            equalize=recipe.equalize,
            exact_input=recipe.exact_input,
            signed_activations=recipe.activations == "s8",
        )
        if search:
            recipe = search_recipe(work, recipe, threads=threads, progress=say).chosen
        say(f"quantising with {recipe.describe()}")
        quantized = Path(temp) / "int8.onnx"
        float_nodes = work.quantize(recipe, quantized)
        evaluation = None
        if evaluate:
            say(f"evaluating against FP32 on {len(evaluate)} images")
            evaluation = evaluate_files(source, quantized, spec, evaluate, threads=threads)
        metadata = {
            "source_model": spec.name,
            "source_md5": file_checksum(source),
            "alphacut_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "calibration_images": str(len(files)),
            "calibration_digest": calibration_digest(files),
            "method": recipe.method,
            "recipe": recipe.to_json(),
            "float_nodes": ",".join(float_nodes),
            "equalized_convs": str(work.equalized_convs),
        }
        if evaluation is not None:
            metadata["evaluation"] = evaluation.to_json()
        proto = onnx.load(str(quantized))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = METADATA_PREFIX + key, value
        proto.producer_name = "alphacut"
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(output, proto.SerializeToString())
    return QuantizeResult(
        output=output,
        source=source,
        recipe=recipe,
        float_nodes=float_nodes,
        equalized_convs=work.equalized_convs,
        calibration_images=len(files),
        source_bytes=source.stat().st_size,
        output_bytes=output.stat().st_size,
        seconds=time.perf_counter() - started,
        evaluation=evaluation,
        metadata=metadata,
    )
