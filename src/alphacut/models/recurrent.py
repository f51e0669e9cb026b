"""Robust Video Matting (RVM): a recurrent matting model. Each frame goes in at its own size
with four state tensors from the frame before, so one video needs one `MattingStream`, fed
its frames in order; a single image is a stream of one frame.

The model scales frames down inside itself by `downsample_ratio`; RVM's authors choose it so
that the longer side is about 512 pixels, and so does `ratio_for`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InferenceError, InvalidModel
from ..options import RemoveOptions, RuntimeOptions
from .backends import OnnxRuntimeRunner
from .registry import ModelSpec
from .session import Session

__all__ = ["MattingStream", "RecurrentSession", "ratio_for"]

_INPUTS = frozenset({"src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"})
_WORKING_SIDE = 512


def ratio_for(width: int, height: int) -> float:
    """The downsample ratio that brings the longer side to about 512 pixels (never up)."""
    return min(1.0, _WORKING_SIDE / max(width, height))


class RecurrentSession(Session):
    """An RVM model on ONNX Runtime (OpenVINO and the INT8 path are for the image models)."""

    def __init__(self, spec: ModelSpec, path: Path, runtime: RuntimeOptions | None = None) -> None:
        runtime = dataclasses.replace(
            runtime or RuntimeOptions(), backend="onnxruntime", fast=False,
            reuse_optimized_model=False,
        )  # fmt: skip
        super().__init__(spec, path, runtime)
        if not isinstance(self._runner, OnnxRuntimeRunner):  # pragma: no cover - forced above
            raise InvalidModel(f"{spec.name} runs on ONNX Runtime only")
        self._onnx = self._runner
        names = set(self._onnx.input_names)
        if names != _INPUTS:
            raise InvalidModel(f"{path}: an RVM model takes {sorted(_INPUTS)}, not {sorted(names)}")

    def stream(self) -> MattingStream:
        """A new video: state starts empty."""
        return MattingStream(self)

    def own_masks(self, image: Image.Image, options: RemoveOptions) -> list[Image.Image]:
        return [self.matte(image)]

    def matte(self, image: Image.Image) -> Image.Image:
        """The alpha matte (mode L) of one image on its own."""
        return self.stream().step(image)

    def run_frame(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self._onnx.run_feeds(feeds)
        except Exception as exc:
            shape = feeds["src"].shape
            raise InferenceError(f"{self.spec.name} failed on a frame of {shape}: {exc}") from exc


class MattingStream:
    """The state one video carries from frame to frame. Not for sharing between threads:
    frames must come in order."""

    def __init__(self, session: RecurrentSession) -> None:
        self._session = session
        self._state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        self._size: tuple[int, int] | None = None

    def step(self, image: Image.Image) -> Image.Image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        if self._size is not None and self._size != image.size:
            self._state = [np.zeros((1, 1, 1, 1), np.float32)] * 4  # a new shot size: restart
        self._size = image.size
        feeds = {
            "src": np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]),
            "r1i": self._state[0],
            "r2i": self._state[1],
            "r3i": self._state[2],
            "r4i": self._state[3],
            "downsample_ratio": np.array([ratio_for(*image.size)], np.float32),
        }
        _foreground, alpha, *state = self._session.run_frame(feeds)
        self._state = state
        matte = np.clip(alpha[0, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(matte, "L")
