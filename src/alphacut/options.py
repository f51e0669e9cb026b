"""Typed option objects and the one table of user-facing settings.

`RemoveOptions` says what to produce, `RuntimeOptions` how ONNX Runtime runs and
`Limits` what input is accepted. Each `RemoveOptions` field carries its CLI flag,
its rembg-compatible short names and its help text in the field metadata;
`SETTINGS` is read from there, so the CLI, the server and the docs cannot drift.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import OptionsError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_ERODE_SIZE",
    "MAX_PROMPT_MARKS",
    "SETTINGS",
    "Limits",
    "OutputFormat",
    "PromptMark",
    "RemoveOptions",
    "RuntimeOptions",
    "Setting",
    "options_from_params",
    "parse_color",
    "parse_extras",
    "parse_prompt",
    "setting_values",
]

OutputFormat = Literal["png", "webp", "jpeg"]
RefineMethod = Literal["auto", "cf", "knn", "guided"]
RefineScope = Literal["image", "strokes"]
REFINE_METHODS: tuple[RefineMethod, ...] = ("auto", "cf", "knn", "guided")
ClothCategory = Literal["upper", "lower", "full", "attire"]
CLOTH_CATEGORIES: tuple[ClothCategory, ...] = ("upper", "lower", "full", "attire")
#: rembg's ViTMatte checkpoints; the first is its default.
VITMATTE_VARIANTS = (
    "small-distinctions-646",
    "small-composition-1k",
    "base-distinctions-646",
    "base-composition-1k",
)
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("png", "webp", "jpeg")
RGBA = tuple[int, int, int, int]

#: Just under Pillow's own decompression-bomb warning (89.5 megapixels), so a
#: default run never sees that warning; 80 MP covers every common camera.
DEFAULT_MAX_PIXELS = 80_000_000
#: The largest trimap erosion accepted: past it the eroded regions are empty on photos of
#: any usual size, so matting only falls back to the soft mask, slower.
MAX_ERODE_SIZE = 100
#: The most points and boxes one SAM prompt may hold (each is decoded with the image).
MAX_PROMPT_MARKS = 64


def _setting(
    default: Any, help: str, *, aliases: tuple[str, ...] = (), cli: str | None = None
) -> Any:
    return field(default=default, metadata={"help": help, "aliases": aliases, "cli": cli})


@dataclass(frozen=True)
class PromptMark:
    """One SAM prompt: a point (x, y) with label 1 (include) or 0 (exclude), or a
    rectangle (x1, y1, x2, y2); coordinates in the image's pixels."""

    kind: Literal["point", "rectangle"]
    data: tuple[float, ...]
    label: int = 1

    def __post_init__(self) -> None:
        want = {"point": 2, "rectangle": 4}.get(self.kind)
        if want is None:
            raise OptionsError(f"a prompt's type is point or rectangle, not {self.kind!r}")
        if len(self.data) != want:
            raise OptionsError(f"a {self.kind} prompt has {want} numbers, not {list(self.data)}")


def parse_prompt(value: object) -> tuple[PromptMark, ...]:
    """SAM prompts from JSON text, a list of rembg-style dicts, or PromptMarks."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise OptionsError(f"sam_prompt is not valid JSON: {exc}") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise OptionsError("sam_prompt must be a non-empty list of points and rectangles")
    if len(value) > MAX_PROMPT_MARKS:
        raise OptionsError(f"sam_prompt has {len(value)} marks; at most {MAX_PROMPT_MARKS}")
    marks = []
    for item in value:
        if isinstance(item, PromptMark):
            marks.append(item)
            continue
        if not isinstance(item, dict):
            raise OptionsError(f"a prompt is an object with type and data, not {item!r}")
        data = item.get("data")
        label = item.get("label", 1)
        if not isinstance(data, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in data
        ):
            raise OptionsError(f"a prompt's data must be a list of numbers, not {data!r}")
        if not isinstance(label, int) or isinstance(label, bool):
            raise OptionsError(f"a prompt's label must be an integer, not {label!r}")
        marks.append(PromptMark(item.get("type"), tuple(float(v) for v in data), label))  # type: ignore[arg-type]
    return tuple(marks)


@dataclass(frozen=True, kw_only=True)
class RemoveOptions:
    """What one removal produces. Unknown names are a TypeError; bad values an OptionsError."""

    only_mask: bool = _setting(
        False, "Return the mask (grayscale, 0..255) instead of a cutout.", aliases=("om",)
    )
    alpha_matting: bool = _setting(
        False,
        "Refine soft edges with closed-form alpha matting (needs alphacut[matting]).",
        aliases=("a",),
    )
    alpha_matting_foreground_threshold: int = _setting(
        240, "Mask values above this (0..255) are certain foreground for matting.", aliases=("af",)
    )
    alpha_matting_background_threshold: int = _setting(
        10, "Mask values below this (0..255) are certain background for matting.", aliases=("ab",)
    )
    alpha_matting_erode_size: int = _setting(
        10,
        f"Erosion size in pixels (0..{MAX_ERODE_SIZE}) applied to the matting trimap.",
        aliases=("ae",),
    )
    post_process_mask: bool = _setting(
        False, "Smooth the mask edge with an opening, a blur and a threshold.", aliases=("ppm",)
    )
    bgcolor: RGBA | None = _setting(
        None,
        "Put the subject on this colour: R,G,B[,A] (0..255 each) or #RRGGBB[AA].",
        aliases=("bgc",),
    )
    background_image: Path | None = _setting(
        None, "Put the subject on this image, scaled to cover the output."
    )
    output_format: OutputFormat = _setting(
        "png",
        "Encoding for bytes and files: png, webp or jpeg (jpeg has no alpha).",
        cli="--format",
        aliases=("format",),
    )
    png_compress_level: int = _setting(
        2, "PNG deflate level 0..9: lower is faster and larger; 6-9 give the smallest files."
    )
    quality: int = _setting(95, "JPEG/WebP quality 1..100.")
    keep_icc_profile: bool = _setting(True, "Copy the input's ICC colour profile to the output.")
    decontaminate: bool = _setting(
        False,
        "Re-estimate soft-edge colours so no tint of the old background remains (pymatting); "
        "ignored with alpha matting, which does it already.",
        aliases=("dc",),
    )
    vitmatte: bool = _setting(
        False,
        "Refine the edge with ViTMatte (downloaded on demand, MIT); takes precedence over "
        "alpha matting.",
        aliases=("vm",),
    )
    vitmatte_model: str | None = _setting(
        None,
        "ViTMatte checkpoint: " + ", ".join(VITMATTE_VARIANTS) + ". [default: the first]",
    )
    refine: RefineMethod | None = _setting(
        None,
        "Solve the alpha again where the mask is unsure (and where --hints say): auto, cf "
        "(closed-form), knn or guided (fast); colours are decontaminated too (needs "
        "alphacut[matting]). [default: off; --refine alone: auto]",
    )
    refine_scope: RefineScope = _setting(
        "image",
        "Where refinement may change the result: image (the automatic band everywhere, plus "
        "the hints) or strokes (only around the hints: the rest stays the plain cut, as the "
        "web page's brush needs).",
    )
    hints: Path | None = _setting(
        None,
        "Hints image (RGBA or LA PNG at the image's size; transparent: no hint, white: keep, "
        "black: remove, grey: edge), or a folder of them named like the inputs. Turns on "
        "--refine.",
    )
    cloth_category: ClothCategory | None = _setting(
        None,
        "u2net_cloth_seg only: upper, lower, full or attire. [default: upper, lower and full "
        "stacked vertically, as rembg]",
        aliases=("cc",),
    )
    sam_prompt: tuple[PromptMark, ...] | None = _setting(
        None,
        'sam only: JSON list of points {"type": "point", "data": [x, y], "label": 1} (label 0 '
        'excludes) and boxes {"type": "rectangle", "data": [x1, y1, x2, y2]}, in image pixels. '
        "[default: the centre point]",
    )

    def __post_init__(self) -> None:
        for name in (
            "alpha_matting_foreground_threshold",
            "alpha_matting_background_threshold",
        ):
            _check_range(name, getattr(self, name), 0, 255)
        _check_range("alpha_matting_erode_size", self.alpha_matting_erode_size, 0, MAX_ERODE_SIZE)
        _check_range("png_compress_level", self.png_compress_level, 0, 9)
        _check_range("quality", self.quality, 1, 100)
        if self.output_format not in OUTPUT_FORMATS:
            raise OptionsError(
                f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, not {self.output_format!r}"
            )
        if self.bgcolor is not None:
            object.__setattr__(self, "bgcolor", _check_color(self.bgcolor))
        if self.background_image is not None:
            object.__setattr__(self, "background_image", Path(self.background_image))
        if self.bgcolor is not None and self.background_image is not None:
            raise OptionsError("bgcolor and background_image cannot be combined")
        if self.vitmatte_model is not None and self.vitmatte_model not in VITMATTE_VARIANTS:
            raise OptionsError(
                f"vitmatte_model must be one of {', '.join(VITMATTE_VARIANTS)}, "
                f"not {self.vitmatte_model!r}"
            )
        if self.cloth_category is not None and self.cloth_category not in CLOTH_CATEGORIES:
            raise OptionsError(
                f"cloth_category must be one of {', '.join(CLOTH_CATEGORIES)}, "
                f"not {self.cloth_category!r}"
            )
        if self.sam_prompt is not None:
            object.__setattr__(self, "sam_prompt", parse_prompt(self.sam_prompt))
        if self.hints is not None:
            object.__setattr__(self, "hints", Path(self.hints))
            if self.refine is None:
                object.__setattr__(self, "refine", "auto")
        if self.refine_scope not in ("image", "strokes"):
            raise OptionsError(f"refine_scope must be image or strokes, not {self.refine_scope!r}")
        if self.refine is not None:
            if self.refine not in REFINE_METHODS:
                raise OptionsError(
                    f"refine must be one of {', '.join(REFINE_METHODS)}, not {self.refine!r}"
                )
            if self.alpha_matting or self.vitmatte:
                raise OptionsError(
                    "refine does its own matting: do not combine it with alpha_matting or vitmatte"
                )

    def replace(self, **changes: Any) -> RemoveOptions:
        """A copy with some fields changed, validated like a new object."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """How ONNX Runtime runs a model.

    providers: ONNX Runtime execution providers. None means the best accelerator this
    onnxruntime build offers, then the CPU (`from_env` reads $ALPHACUT_PROVIDERS). Two or more are a
    preference list, e.g. ("CUDAExecutionProvider", "CPUExecutionProvider"): the first one
    this build offers runs, and the choice is logged at INFO. One provider named alone must
    run. Either way, when none can, building the `Remover` or session fails with
    ProviderUnavailable.
    intra_op_threads: threads one inference may use; None lets ONNX Runtime pick (all cores).
    backend: "onnxruntime" or "openvino" (CPU only, needs alphacut[openvino]; faster, but
    masks only within ±2 of rembg's, not identical). None: onnxruntime (`from_env` reads
    $ALPHACUT_BACKEND).
    reuse_optimized_model: keep the graph ONNX Runtime optimised for this CPU in
    $ALPHACUT_CACHE_DIR (default ~/.cache/alphacut) and load that next time (CPU sessions at
    graph_optimization "all" only; outputs are bit-identical).
    fast: run an INT8 copy of the model (built once from the photos alphacut ships, cached
    beside the model) on OpenVINO when it is installed (alphacut[fast]) and the CPU has 8-bit
    dot-product instructions (VNNI, AMX), else on ONNX Runtime. Masks are close to exact
    mode's, not identical (see the README for measured IoUs).
    pin_threads: let OpenVINO pin its threads to cores. Turn it off where several processes
    share the machine (Ray actors): each would pin from core 0 up, onto the same cores.
    """

    providers: tuple[str, ...] | None = None
    intra_op_threads: int | None = None
    graph_optimization: Literal["disabled", "basic", "extended", "all"] = "all"
    backend: Literal["onnxruntime", "openvino"] | None = None
    reuse_optimized_model: bool = True
    fast: bool = False
    pin_threads: bool = True

    def __post_init__(self) -> None:
        if self.providers is not None:
            object.__setattr__(self, "providers", tuple(self.providers))
        if self.intra_op_threads is not None and self.intra_op_threads < 1:
            raise OptionsError("intra_op_threads must be at least 1")
        if self.backend not in (None, "onnxruntime", "openvino"):
            raise OptionsError(f"backend must be onnxruntime or openvino, not {self.backend!r}")

    def check_batch(self, batch: int, name: str) -> None:
        """OptionsError if this runtime cannot run `batch` images per model call: the fast
        path's INT8 graph fails on a batch in ONNX Runtime (its Resize nodes take one)."""
        if batch > 1 and self.fast:
            raise OptionsError(
                f"the fast path runs one image per model call: {name} {batch} cannot be "
                "combined with --fast (fast=True)"
            )

    @classmethod
    def from_env(cls, **fields: Any) -> RuntimeOptions:
        """Options with `fields`, and providers and backend, where not given, from
        $ALPHACUT_PROVIDERS (comma separated, e.g. "cuda,cpu") and $ALPHACUT_BACKEND: the
        one place they are read. The CLI, the server, and the defaults of `Remover`,
        `ModelPool`, `load_session` and `new_session` start here."""
        providers = parse_providers(os.environ.get("ALPHACUT_PROVIDERS", ""))
        backend = os.environ.get("ALPHACUT_BACKEND", "").strip()
        if fields.get("providers") is None and providers:
            fields["providers"] = providers
        if fields.get("backend") is None and backend:
            fields["backend"] = backend
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What input is accepted. max_pixels: width × height above which an image (or a video's
    frame) is refused from its header alone, before its pixels are allocated. max_frames and
    max_seconds: a video's length, checked against its header and again while decoding
    (None: no limit). max_matting_pixels: the largest image closed-form alpha matting may
    solve (its memory grows with the whole image: about 0.6 GB a megapixel; None: no
    limit). raise_hint and matting_hint: what the refusal of an image over max_pixels or
    max_matting_pixels tells its reader to do; each edge names its own way (the CLI its
    --max-pixels flag), so the library never speaks of flags."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int | None = None
    max_seconds: float | None = None
    max_matting_pixels: int | None = None
    raise_hint: str = "raise Limits.max_pixels or ALPHACUT_MAX_PIXELS"
    matting_hint: str = "raise Limits.max_matting_pixels"

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise OptionsError("max_pixels must be at least 1")
        if self.max_matting_pixels is not None and self.max_matting_pixels < 1:
            raise OptionsError("max_matting_pixels must be at least 1")
        if (self.max_frames is not None and self.max_frames < 1) or (
            self.max_seconds is not None and self.max_seconds <= 0
        ):
            raise OptionsError("max_frames and max_seconds must be positive")

    @classmethod
    def from_env(cls) -> Limits:
        raw = os.environ.get("ALPHACUT_MAX_PIXELS")
        if not raw:
            return cls()
        try:
            return cls(max_pixels=int(raw))
        except ValueError:
            raise OptionsError(f"ALPHACUT_MAX_PIXELS must be an integer, not {raw!r}") from None


@dataclass(frozen=True)
class Setting:
    """One user-facing option: its API name, CLI flag, short names and help."""

    name: str
    cli_flag: str
    aliases: tuple[str, ...]
    help: str
    default: Any
    type: Any


def _settings() -> tuple[Setting, ...]:
    rows = []
    for f in dataclasses.fields(RemoveOptions):
        rows.append(
            Setting(
                name=f.name,
                cli_flag=f.metadata["cli"] or "--" + f.name.replace("_", "-"),
                aliases=f.metadata["aliases"],
                help=f.metadata["help"],
                default=f.default,
                type=f.type,
            )
        )
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _settings()

_PROVIDER_SHORT = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}


def _provider_name(text: str) -> str:
    text = text.strip()
    return _PROVIDER_SHORT.get(text.lower(), text)


def parse_providers(text: str) -> tuple[str, ...]:
    """'cuda,cpu' or full ONNX Runtime names -> provider names in order."""
    return tuple(_provider_name(p) for p in text.split(",") if p.strip())


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionsError(f"{name} must be an integer in {low}..{high}, not {value!r}")


def _check_color(color: object) -> RGBA:
    if isinstance(color, str):
        return parse_color(color)
    if not isinstance(color, (tuple, list)) or len(color) not in (3, 4):
        raise OptionsError(f"bgcolor must be 3 or 4 integers in 0..255, not {color!r}")
    values = tuple(color) if len(color) == 4 else (*color, 255)
    for v in values:
        _check_range("bgcolor component", v, 0, 255)
    return (int(values[0]), int(values[1]), int(values[2]), int(values[3]))


_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def parse_color(text: str) -> RGBA:
    """Parse 'R,G,B', 'R,G,B,A' (0..255 each), '#RRGGBB' or '#RRGGBBAA'. Alpha defaults to 255."""
    text = text.strip()
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        parts = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        return _check_color(parts)
    pieces = [p.strip() for p in text.strip("()[]").split(",")]
    try:
        numbers = [int(p) for p in pieces]
    except ValueError:
        raise OptionsError(f"not a colour: {text!r} (use R,G,B[,A] or #RRGGBB[AA])") from None
    return _check_color(numbers)


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def options_from_params(
    params: dict[str, str],
    *,
    base: RemoveOptions | None = None,
    exclude: frozenset[str] = frozenset(),
) -> RemoveOptions:
    """Build options from text parameters (HTTP query or form fields).

    Accepts each setting's own name and its aliases (rembg's `om`, `a`, `af`, `ab`,
    `ae`, `ppm`, `bgc`, and `format`). Booleans take true/false/1/0/yes/no/on/off;
    unknown names and settings in `exclude` are an OptionsError.
    """
    names: dict[str, Setting] = {}
    for row in SETTINGS:
        if row.name not in exclude:
            names.update(dict.fromkeys((row.name, *row.aliases), row))
    values: dict[str, Any] = {}
    for key, raw in params.items():
        setting = names.get(key)
        if setting is None:
            allowed = ", ".join(sorted(names))
            raise OptionsError(f"unknown option {key!r}; known options: {allowed}")
        values[setting.name] = _parse_value(setting, raw)
    return dataclasses.replace(base or RemoveOptions(), **values)


def parse_flag(name: str, raw: str) -> bool:
    """A yes/no parameter as text (true/false, 1/0, yes/no, on/off, y/n, t/f; empty: false),
    the one reading every HTTP route and option table uses."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise OptionsError(f"{name} must be true or false, not {raw!r}")


def _parse_value(setting: Setting, raw: str) -> Any:
    text = raw.strip()
    if isinstance(setting.default, bool):
        return parse_flag(setting.name, raw)
    if isinstance(setting.default, int):
        try:
            return int(text)
        except ValueError:
            raise OptionsError(f"{setting.name} must be an integer, not {raw!r}") from None
    if setting.name == "bgcolor":
        return parse_color(text) if text else None
    if setting.name == "sam_prompt":
        return parse_prompt(text) if text else None
    if setting.default is None:
        return text or None  # an empty optional field means "not set"
    return text


def parse_extras(text: str) -> dict[str, Any]:
    """rembg's `-x/--extras` JSON object (for example {"sam_prompt": [...], "cc": "upper"}):
    its keys are setting names or aliases, returned as RemoveOptions field values."""
    try:
        extras = json.loads(text)
    except ValueError as exc:
        raise OptionsError(f"extras is not valid JSON: {exc}") from None
    if not isinstance(extras, dict):
        raise OptionsError("extras must be a JSON object")
    return setting_values(extras)


def setting_values(values: dict[str, Any]) -> dict[str, Any]:
    """`values` keyed by setting names or their aliases (rembg's `cc`, say), re-keyed by
    RemoveOptions field names; an unknown key is an OptionsError."""
    names = {alias: row.name for row in SETTINGS for alias in (row.name, *row.aliases)}
    fields: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise OptionsError(f"unknown option {key!r}; known: {', '.join(sorted(names))}")
        fields[names[key]] = value
    return fields
