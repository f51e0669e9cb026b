"""Static INT8 quantisation of a saliency model, calibrated on real photos.

The steps, in order:

1. upgrade the ONNX opset to 13 when it is older (per-channel QDQ needs 13) and run ONNX
   Runtime's quantisation pre-processing (shape inference and graph clean-up);
2. decode the calibration photos and `prepare()` them exactly as the pipeline does;
3. equalise channels (optional, on by default): between a Conv and the Convs it feeds
   through Relu, MaxPool, linear Resize and Concat, scale each channel down on the producer
   and up on the consumers so that activation and weight ranges balance. The float model
   computes the same function (both ops are positively homogeneous), but 8 bits cover it far
   better: u2netp has channels whose ranges differ by 100x inside one tensor;
4. calibrate once (MinMax, Entropy or Percentile) and keep the tensor ranges in a cache;
5. quantise with ONNX Runtime, keeping the recipe's float nodes in float;
6. write the model with its provenance in `metadata_props`.

A `QuantRecipe` says how; `RECIPES` holds the recipe found by `quantize_search` for each
registered model, so the command itself needs no search.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ModelNotFound, OptionsError
from ..models.registry import MODELS, ModelSpec
from .quantize_graph import (
    equalize_channels,
    head_nodes,
    load_onnx,
    model_input_name,
    prepare_float_model,
    require_onnx,
)
from .quantize_input import PixelInput, pixel_exact_input

__all__ = [
    "IMAGE_SUFFIXES",
    "RECIPES",
    "QuantRecipe",
    "calibration_files",
    "recipe_for",
]

log = logging.getLogger("alphacut.models")

Method = Literal["minmax", "entropy", "percentile"]
Format = Literal["qdq", "qoperator"]
Progress = Callable[[str], None]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
METADATA_PREFIX = "alphacut.quantization."


@dataclass(frozen=True, kw_only=True)
class QuantRecipe:
    """How a model is quantised.

    format: "qdq" (QuantizeLinear/DequantizeLinear pairs, fused by ONNX Runtime) or
    "qoperator" (QLinearConv and friends written into the file).
    method: how activation ranges are calibrated: "minmax", "entropy" (KL divergence over a
    2048-bin histogram; slow) or "percentile" (99.999th percentile).
    per_channel: one weight scale per output channel. reduce_range: 7-bit weights, for CPUs
    without VNNI. activations / weights: "u8" or "s8". symmetric_activations: zero point 0.
    equalize: balance channel ranges between consecutive convs first (exact in float).
    exact_input: let the first conv read pixels in [0, 1] with a pinned 1/255 scale, so the
    input is quantised without error (exact in float; see `quantize_input`).
    float_head: keep every single-channel Conv (the side outputs) and everything downstream
    of them (side upsampling, their concat, the fusing conv, the sigmoids) in float.
    float_nodes: further node names kept in float (names after opset conversion).
    """

    format: Format = "qdq"
    method: Method = "minmax"
    per_channel: bool = True
    reduce_range: bool = False
    activations: Literal["u8", "s8"] = "u8"
    weights: Literal["u8", "s8"] = "s8"
    symmetric_activations: bool = False
    equalize: bool = True
    exact_input: bool = True
    float_head: bool = True
    float_nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        choices: dict[str, tuple[str, ...]] = {
            "format": ("qdq", "qoperator"),
            "method": ("minmax", "entropy", "percentile"),
            "activations": ("u8", "s8"),
            "weights": ("u8", "s8"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise OptionsError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )
        object.__setattr__(self, "float_nodes", tuple(self.float_nodes))

    def describe(self) -> str:
        """One line, e.g. "qdq minmax per-channel u8/s8 equalised, float head + 5 nodes"."""
        parts = [
            self.format,
            self.method,
            "per-channel" if self.per_channel else "per-tensor",
            f"{self.activations}/{self.weights}",
        ]
        parts += ["reduce-range"] * self.reduce_range + ["sym-act"] * self.symmetric_activations
        parts += ["equalised"] * self.equalize + ["pixel-exact input"] * self.exact_input
        extra = f"{len(self.float_nodes)} nodes"
        return " ".join(parts) + (f", float head + {extra}" if self.float_head else f", {extra}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


#: The recipe `alphacut models quantize NAME` uses, per registered model; found offline by
#: `quantize_search.search_recipe` (see docs/int8.md). Other models get `QuantRecipe()`.
RECIPES: dict[str, QuantRecipe] = {
    "u2netp": QuantRecipe(
        float_nodes=(
            # Stage 2 decoder: Conv_765 makes a near-constant channel (~228) that Conv_787
            # weighs by 5.6, while the other channels stay below 25 and weigh ~0.05. No
            # 8-bit scale fits that path, and equalisation cannot balance a constant.
            "Conv_765",
            "Relu_766",
            "Resize_785",
            "Concat_786",
            "Conv_787",
            # Stage 1 decoder, the same pattern one level up (bias-dominated channels); the
            # search's second pick, cheap at 40x40 -> 160x160.
            "Conv_898",
            "Relu_899",
            "Resize_918",
            "Concat_919",
            "Conv_920",
        ),
    ),
    # u2net's search (docs/int8.md; 23 calibration photos, 796 s on 2 AVX2 cores): the first
    # conv, then the same two bias-dominated decoder units as u2netp's. Calibration IoU
    # against FP32 0.965 -> 0.997 (worst 0.895 -> 0.993) at 1.93x the model's speed.
    "u2net": QuantRecipe(
        float_nodes=(
            "Conv_0",
            "Conv_898",
            "Relu_899",
            "Resize_918",
            "Concat_919",
            "Conv_920",
            "Conv_765",
            "Relu_766",
            "Resize_785",
            "Concat_786",
            "Conv_787",
        ),
    ),
}


def recipe_for(spec: ModelSpec) -> QuantRecipe:
    """The shipped recipe for a registered model, else the generic default."""
    return RECIPES.get(spec.name, QuantRecipe())


def resolve_source(model: str | Path) -> tuple[ModelSpec, Path]:
    """A registered name (fetched when missing) or a path to an .onnx file. A file whose
    checksum is a registered model's gets that model's spec (and so its recipe)."""
    from ..models.registry import did_you_mean
    from ..models.session import custom_spec
    from ..models.store import ensure_model, file_checksum

    if isinstance(model, str) and model in MODELS:
        spec = MODELS[model]
        return spec, ensure_model(spec)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFound(
            f"{model}: neither a registered model nor an ONNX file{did_you_mean(str(model))}"
            " (alphacut models list shows the models)"
        )
    md5 = "md5:" + file_checksum(path)
    for spec in MODELS.values():
        if spec.checksum == md5:
            return spec, path
    load_onnx(path)  # InvalidModel before anything else runs
    return custom_spec(path), path


def calibration_files(folder: Path, *, role: str = "calibration") -> list[Path]:
    """The image files directly inside `folder`, sorted by name; hidden files are skipped.
    `role` names the folder in error messages."""
    if not folder.is_dir():
        raise OptionsError(f"{role} folder {folder} does not exist or is not a folder")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise OptionsError(
            f"{role} folder {folder} holds no images ({suffixes}); "
            "quantisation needs at least one representative photo"
        )
    return files


def calibration_digest(files: Sequence[Path]) -> str:
    """sha256 over each file's name and md5, in order: which photos calibrated a model."""
    from ..models.store import file_checksum

    lines = "".join(f"{p.name}\t{file_checksum(p)}\n" for p in files)
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def prepared_tensors(files: Sequence[Path], spec: ModelSpec) -> list[np.ndarray]:
    """Each file decoded and `prepare()`d exactly as the pipeline does: (1, 3, H, W) float32."""
    from ..imagefile import decode
    from ..pipeline.prepare import prepare

    return [prepare(decode(path).image, spec) for path in files]


class _Reader:
    """Feeds prepared tensors to ONNX Runtime's calibrators: the `CalibrationDataReader`
    protocol (`get_next` until None); registered as one when calibration starts, so that
    importing this module needs neither ONNX Runtime's quantisation tools nor onnx."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray]) -> None:
        self._input = input_name
        self._tensors = list(tensors)
        self._iter: Iterator[np.ndarray] = iter(self._tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._iter, None)
        return None if tensor is None else {self._input: tensor}

    def rewind(self) -> None:
        self._iter = iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


_METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {},
    # quantize_static would use 128 bins for 128 quantised bins, which makes Entropy equal
    # to MinMax; the calibrator is therefore built here with a real histogram.
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"num_bins": 2048, "percentile": 99.999},
}


def calibrate(float_path: Path, tensors: Sequence[np.ndarray], method: Method, cache: Path) -> Path:
    """Run the calibrator once over `tensors` and store the tensor ranges in `cache`, which
    every later `quantize_static` call of this run reads instead of calibrating again."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        create_calibrator,
        save_tensors_data,
    )

    CalibrationDataReader.register(_Reader)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    input_name = model_input_name(float_path)
    calibrator = create_calibrator(
        str(float_path),
        augmented_model_path=str(cache.with_suffix(".augmented.onnx")),
        calibrate_method=methods[method],
        extra_options=dict(_METHOD_OPTIONS[method]),
    )
    chatter = io.StringIO()  # the histogram calibrators print their settings to stdout
    with contextlib.redirect_stdout(chatter):
        calibrator.collect_data(_Reader(input_name, tensors))
        save_tensors_data(calibrator.compute_data(), cache)
    log.debug("calibrator: %s", chatter.getvalue().strip())
    return cache


def quantize_file(
    float_path: Path,
    output: Path,
    recipe: QuantRecipe,
    cache: Path,
    float_nodes: Sequence[str],
    overrides: dict[str, list[dict[str, np.ndarray]]] | None = None,
) -> None:
    """Quantise `float_path` into `output` with the ranges in `cache`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))  # ORT warns about pre-processing through root
    try:
        quantize_static(
            str(float_path),
            str(output),
            None,
            quant_format=QuantFormat.QDQ if recipe.format == "qdq" else QuantFormat.QOperator,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            activation_type=types[recipe.activations],
            weight_type=types[recipe.weights],
            nodes_to_exclude=list(float_nodes),
            calibrate_method=methods[recipe.method],
            calibration_cache_path=str(cache),
            extra_options={
                "ActivationSymmetric": recipe.symmetric_activations,
                "TensorQuantOverrides": overrides or {},
            },
        )
    finally:
        quiet.setLevel(level)


@dataclass
class Workspace:
    """Everything one quantisation run computes once and reuses: the prepared float model
    (equalised when the recipe says so), the calibration tensors and the range cache."""

    spec: ModelSpec
    source: Path
    folder: Path
    float_path: Path
    input_name: str
    tensors: list[np.ndarray]
    head: tuple[str, ...]
    node_names: frozenset[str]
    equalized_convs: int
    pixel_input: PixelInput | None = None
    caches: dict[str, Path] = field(default_factory=dict)

    def cache(self, method: Method) -> Path:
        """The calibration cache for `method`, computed on first use."""
        if method not in self.caches:
            path = self.folder / f"ranges-{method}.json"
            self.caches[method] = calibrate(self.float_path, self.tensors, method, path)
        return self.caches[method]

    def float_nodes(self, recipe: QuantRecipe) -> tuple[str, ...]:
        """The recipe's float nodes that exist in this model, plus the head if asked for."""
        missing = [n for n in recipe.float_nodes if n not in self.node_names]
        if missing:
            log.warning("recipe names nodes this model lacks: %s", ", ".join(missing))
        wanted = [*(self.head if recipe.float_head else ()), *recipe.float_nodes]
        if self.pixel_input is not None:
            wanted += self.pixel_input.float_nodes
        return tuple(dict.fromkeys(n for n in wanted if n in self.node_names))

    def quantize(self, recipe: QuantRecipe, output: Path) -> tuple[str, ...]:
        """Quantise into `output`; returns the nodes kept in float."""
        nodes = self.float_nodes(recipe)
        overrides = self.pixel_input.overrides if self.pixel_input else None
        quantize_file(self.float_path, output, recipe, self.cache(recipe.method), nodes, overrides)
        return nodes


def open_workspace(
    source: Path,
    spec: ModelSpec,
    tensors: list[np.ndarray],
    folder: Path,
    *,
    equalize: bool,
    exact_input: bool = False,
    signed_activations: bool = False,
) -> Workspace:
    """Prepare `source` for quantisation in `folder` (see the module docstring, steps 1-3)."""
    onnx = require_onnx()
    float_path = prepare_float_model(source, folder)
    input_name = model_input_name(float_path)
    model = onnx.load(str(float_path))
    equalized = 0
    if equalize:
        model, equalized = equalize_channels(model, tensors, input_name)
    pixel_input = None
    if exact_input:
        model, pixel_input = pixel_exact_input(
            model, input_name, spec.mean, spec.std, signed=signed_activations
        )
        if pixel_input is None:
            log.warning("the model's input does not feed one plain conv; quantising it as is")
    if equalized or pixel_input:
        float_path = folder / "prepared.onnx"
        onnx.save(model, str(float_path))
    return Workspace(
        spec=spec,
        source=source,
        folder=folder,
        float_path=float_path,
        input_name=input_name,
        tensors=tensors,
        head=tuple(head_nodes(model)),
        node_names=frozenset(n.name for n in model.graph.node),
        equalized_convs=equalized,
        pixel_input=pixel_input,
    )


def read_provenance(path: Path) -> dict[str, str]:
    """The `alphacut.quantization.*` metadata of a quantised file, without the prefix."""
    onnx = require_onnx()
    model = onnx.load(str(path), load_external_data=False)
    return {
        p.key[len(METADATA_PREFIX) :]: p.value
        for p in model.metadata_props
        if p.key.startswith(METADATA_PREFIX)
    }
