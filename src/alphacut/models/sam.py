"""Segment Anything: an image encoder and a prompt decoder, so a class of its own.

The image is scaled to fit a 1024 x 684 canvas (top-left aligned, zero padding) and
encoded once; the decoder turns points and boxes, moved into the canvas's frame, into
masks, which are mapped back to the image and joined. Sampling is bilinear, with values
outside the image read as 0, as in rembg, so prompts give rembg's masks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InferenceError, InvalidModel
from ..options import PromptMark, RemoveOptions, RuntimeOptions
from .registry import ModelSpec
from .session import Session
from .store import companion_paths

__all__ = ["SamSession"]

_CANVAS_W, _CANVAS_H = 1024, 684
_DECODER_INPUTS = {
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
}
# SAM's label numbers: 1 include, 0 exclude, 2 and 3 a box's corners, -1 padding.
_BOX_LABELS = (2.0, 3.0)


class SamSession(Session):
    """SAM's encoder (`path`) with its decoder beside it; `segment` runs both."""

    def __init__(self, spec: ModelSpec, path: Path, runtime: RuntimeOptions | None = None) -> None:
        import onnxruntime as ort

        # The optimised-graph cache is for the CPU image models; SAM loads as it is.
        runtime = dataclasses.replace(runtime or RuntimeOptions(), reuse_optimized_model=False)
        super().__init__(spec, path, runtime)
        decoders = companion_paths(spec, self.path)
        if not decoders:
            raise InvalidModel(f"{spec.name}: no decoder file is registered beside the encoder")
        try:
            self._decoder = ort.InferenceSession(str(decoders[0]), providers=list(self.providers))
        except Exception as exc:  # ONNX Runtime raises its own untyped exception classes
            raise InvalidModel(f"{decoders[0]} is not a readable SAM decoder: {exc}") from exc
        names = {i.name for i in self._decoder.get_inputs()}
        if not names >= _DECODER_INPUTS:
            raise InvalidModel(
                f"{decoders[0]}: a SAM decoder takes {sorted(_DECODER_INPUTS)}, not {sorted(names)}"
            )

    def own_masks(self, image: Image.Image, options: RemoveOptions) -> list[Image.Image]:
        return [self.segment(image, options.sam_prompt)]

    def segment(self, image: Image.Image, prompt: tuple[PromptMark, ...] | None) -> Image.Image:
        """The mask (mode L, 0 or 255) of what `prompt` points at; default: the centre point."""
        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        if not prompt:
            prompt = (PromptMark("point", (float(width // 2), float(height // 2)), 1),)
        scale = min(_CANVAS_W / width, _CANVAS_H / height)
        canvas = _resample(rgb, 1 / scale, (_CANVAS_H, _CANVAS_W)).astype(np.float32)
        embedding = self.run(canvas)
        coords, labels = _prompt_arrays(prompt, scale)
        feeds = {
            "image_embeddings": embedding,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": np.zeros((1, 1, 256, 256), dtype=np.float32),
            "has_mask_input": np.zeros(1, dtype=np.float32),
            "orig_im_size": np.array((_CANVAS_H, _CANVAS_W), dtype=np.float32),
        }
        try:
            masks = self._decoder.run(None, feeds)[0]
        except Exception as exc:
            raise InferenceError(f"{self.spec.name} decoder failed: {exc}") from exc
        joined = np.zeros((height, width), dtype=bool)
        for canvas_mask in np.asarray(masks)[0]:
            joined |= _resample(canvas_mask, scale, (height, width)) > 0.0
        return Image.fromarray(np.where(joined, 255, 0).astype(np.uint8), "L")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The image embedding of an HWC float32 canvas."""
        try:
            return self._runner.run(batch, 0)
        except Exception as exc:
            raise InferenceError(f"{self.spec.name} encoder failed: {exc}") from exc


def _prompt_arrays(prompt: tuple[PromptMark, ...], scale: float) -> tuple[np.ndarray, np.ndarray]:
    points: list[tuple[float, float]] = []
    labels: list[float] = []
    for mark in prompt:
        if mark.kind == "point":
            points.append((mark.data[0], mark.data[1]))
            labels.append(float(mark.label))
        else:
            x1, y1, x2, y2 = mark.data
            points += [(x1, y1), (x2, y2)]
            labels += _BOX_LABELS
    points.append((0.0, 0.0))
    labels.append(-1.0)
    coords = (np.array(points, dtype=np.float64) * scale).astype(np.float32)[None]
    return coords, np.array(labels, dtype=np.float32)[None]


def _resample(values: np.ndarray, step: float, shape: tuple[int, int]) -> np.ndarray:
    """values sampled bilinearly at (row, column) * step for every cell of `shape`; points
    outside read as 0. Keeps the input's dtype (truncating, for bytes)."""
    from scipy.ndimage import map_coordinates

    rows, cols = np.meshgrid(np.arange(shape[0]) * step, np.arange(shape[1]) * step, indexing="ij")
    planes = values[..., None] if values.ndim == 2 else values
    out = np.empty((*shape, planes.shape[2]), dtype=np.float64)
    for channel in range(planes.shape[2]):
        out[..., channel] = map_coordinates(
            planes[..., channel].astype(np.float64), [rows, cols], order=1, mode="constant", cval=0
        )
    result = out[..., 0] if values.ndim == 2 else out
    return result.astype(values.dtype)
