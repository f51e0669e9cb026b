"""Pixel-exact quantisation of the model input.

The pipeline feeds ``(k / peak - mean_c) / std_c`` for pixel values k in 0..255, where peak
is the brightest byte of the resized photo (255 for nearly every real photo). One 8-bit
scale shared by three channels with different means and deviations cannot hit those
lattices, so quantising the input adds about half a grey level of noise to every pixel;
that alone costs as much mask accuracy as all the other layers together.

The rewrite below makes the first convolution see ``k / peak`` instead: the graph input is
padded with zeros (the convolution's own padding, moved out), then multiplied by std and
shifted by mean, and the convolution's weights and bias absorb the inverse. In float the
function is unchanged, padding included. With the quantisation scale pinned at 1/255 and
the zero point at 0, every pixel of a photo whose peak is 255 is represented exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.blocked_layout import node_attribute
from .quantize_graph import consumer_map, plain_conv, require_onnx

__all__ = ["PixelInput", "pixel_exact_input"]

PIXELS = "alphacut_pixels"


@dataclass(frozen=True)
class PixelInput:
    """What `pixel_exact_input` inserted: float nodes to keep out of quantisation, and the
    fixed quantisation parameters of the pixel tensor in ONNX Runtime's override format."""

    float_nodes: tuple[str, ...]
    overrides: dict[str, list[dict[str, np.ndarray]]]


def pixel_exact_input(
    model: Any,
    input_name: str,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    signed: bool = False,
) -> tuple[Any, PixelInput | None]:
    """A float-equivalent copy of `model` whose first convolution reads pixels in [0, 1];
    (model, None) unchanged when the input does not feed exactly one plain 3-channel Conv
    with constant weights and explicit padding."""
    onnx = require_onnx()
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    consumers = consumer_map(graph).get(input_name, [])
    initializers = {t.name: t for t in graph.initializer}
    if len(consumers) != 1 or consumers[0][1] != 0:
        return model, None
    conv = consumers[0][0]
    if (
        not plain_conv(conv)
        or node_attribute(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        or len(conv.input) < 3
        or conv.input[1] not in initializers
        or conv.input[2] not in initializers
    ):
        return model, None
    weight = numpy_helper.to_array(initializers[conv.input[1]]).astype(np.float64)
    bias = numpy_helper.to_array(initializers[conv.input[2]]).astype(np.float64)
    if weight.ndim != 4 or weight.shape[1] != len(mean) or len(mean) != len(std):
        return model, None
    pads = list(node_attribute(conv, "pads", [0, 0, 0, 0]))
    mean_column = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    std_column = np.asarray(std, dtype=np.float64)[None, :, None, None]
    # conv(x) with x = (p - mean) / std  ==  conv'(p) with W' = W / std, b' = b - W'.mean
    weight = weight / std_column
    bias = bias - (weight * mean_column).sum(axis=(1, 2, 3))
    initializers[conv.input[1]].CopyFrom(
        numpy_helper.from_array(weight.astype(np.float32), conv.input[1])
    )
    initializers[conv.input[2]].CopyFrom(
        numpy_helper.from_array(bias.astype(np.float32), conv.input[2])
    )
    for attribute in conv.attribute:
        if attribute.name == "pads":
            attribute.CopyFrom(helper.make_attribute("pads", [0] * len(pads)))
    spatial = len(pads) // 2
    padding = [0, 0, *pads[:spatial], 0, 0, *pads[spatial:]]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray(padding, dtype=np.int64), f"{PIXELS}_pads"),
            numpy_helper.from_array(std_column.astype(np.float32), f"{PIXELS}_std"),
            numpy_helper.from_array(mean_column.astype(np.float32), f"{PIXELS}_mean"),
        ]
    )
    inserted = [
        helper.make_node(
            "Pad", [input_name, f"{PIXELS}_pads"], [f"{PIXELS}_padded"], name=f"{PIXELS}_pad"
        ),
        helper.make_node(
            "Mul", [f"{PIXELS}_padded", f"{PIXELS}_std"], [f"{PIXELS}_spread"], name=f"{PIXELS}_mul"
        ),
        helper.make_node(
            "Add", [f"{PIXELS}_spread", f"{PIXELS}_mean"], [PIXELS], name=f"{PIXELS}_add"
        ),
    ]
    conv.input[0] = PIXELS
    position = list(graph.node).index(conv)
    for offset, node in enumerate(inserted):
        graph.node.insert(position + offset, node)
    zero_point = np.array(-128, dtype=np.int8) if signed else np.array(0, dtype=np.uint8)
    overrides = {PIXELS: [{"scale": np.array(1 / 255, dtype=np.float32), "zero_point": zero_point}]}
    return model, PixelInput(tuple(node.name for node in inserted), overrides)
