"""Keep upsampling, concatenation and residual sums in ONNX Runtime's blocked layout.

On x86, ONNX Runtime runs convolutions in its NCHWc layout: channels in blocks of 8
(AVX2) or 16 (AVX-512), each block stored pixel by pixel. It can keep a tensor in that
layout between convolutions and poolings, but not across a bilinear Resize, so in the
U²-Net family every decoder stage converts its tensors back to plain NCHW, resizes,
concatenates, adds, and converts again. On u2netp those conversions and the slower NCHW
kernels cost 7% of the model's time.

This rewrite of a graph ONNX Runtime has already optimised does those steps in the
blocked layout instead, with the same arithmetic:

- a block-aligned tensor of shape (1, C, H, W) in NCHWc memory *is* a (C/block, H, W,
  block) tensor in channels-last order, so a Reshape exposes it to ONNX Runtime's
  channels-last bilinear kernel, which computes every output exactly as the NCHW one;
- concatenating block-aligned channels, and adding two tensors of one shape, is the same
  operation in either layout.

Whether a rewritten graph really gives the original's outputs bit for bit is not taken
on trust: `open_session` runs both on the same input and keeps the rewrite only if every
output is identical.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["block_size_candidates", "rewrite_in_blocked_layout"]

log = logging.getLogger("alphacut.models")

_NCHWC = "com.microsoft.nchwc"


def block_size_candidates(cpu_features: str) -> tuple[int, ...]:
    """The NCHWc block sizes to try, the one this CPU most likely uses first."""
    return (16, 8) if "avx512f" in cpu_features.split() else (8, 16)


def rewrite_in_blocked_layout(optimized: Path, original: Path, block: int) -> bytes | None:
    """The serialised rewrite of `optimized` (ONNX Runtime's own optimised graph of
    `original`) for NCHWc blocks of `block` channels; None when nothing could be moved or
    the model is not one this applies to (no onnx package, no static batch of 1)."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        return None
    model = onnx.load(str(optimized))
    shapes = _static_shapes(onnx, onnx.load(str(original)))
    if shapes is None:
        return None
    moved = _Rewrite(onnx, model.graph, shapes, block).run()
    if not moved:
        return None
    log.debug("moved %d nodes of %s into the blocked layout", moved, original.name)
    return bytes(model.SerializeToString())


def _static_shapes(onnx: Any, model: Any) -> dict[str, list[int]] | None:
    """Every tensor's shape from ONNX shape inference, or None unless the input is one image."""
    inputs = model.graph.input
    if len(inputs) != 1:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims) or dims[0].dim_value != 1:
        return None
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tensor_dims = info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in tensor_dims):
            shapes[info.name] = [d.dim_value for d in tensor_dims]
    return shapes


class _Rewrite:
    """One pass over the nodes in order, giving NCHW tensors a blocked twin where it can."""

    def __init__(self, onnx: Any, graph: Any, shapes: dict[str, list[int]], block: int) -> None:
        self.onnx = onnx
        self.graph = graph
        self.shapes = shapes
        self.block = block
        self.producers = {out: node for node in graph.node for out in node.output}
        self.initializers = {init.name: init for init in graph.initializer}
        self.twins: dict[str, str] = {}  # NCHW tensor -> the same values in NCHWc memory
        self.channels: dict[str, int] = {}  # NCHWc tensor -> its (unpadded) channel count
        self.renamed: dict[str, str] = {}  # output of a dropped ReorderInput -> its source
        self.nodes: list[Any] = []
        self.count = 0

    def run(self) -> int:
        moved = 0
        for node in self.graph.node:
            inputs = [self.renamed.get(name, name) for name in node.input]
            del node.input[:]
            node.input.extend(inputs)
            if _is(node, "ReorderInput", _NCHWC) and _attribute(node, "channels_last", 0) == 0:
                source = self.blocked(node.input[0])
                if source is not None:
                    self.renamed[node.output[0]] = source
                    moved += 1
                    continue
            if self.move(node):
                moved += 1
            else:
                self.nodes.append(node)
        if moved:
            del self.graph.node[:]
            self.graph.node.extend(_live(self.nodes, {o.name for o in self.graph.output}))
        return moved

    def blocked(self, name: str) -> str | None:
        """The NCHWc tensor holding `name`'s values, if there is one with aligned channels."""
        if name in self.twins:
            return self.twins[name]
        producer = self.producers.get(name)
        if (
            producer is not None
            and _is(producer, "ReorderOutput", _NCHWC)
            and _attribute(producer, "channels_last", 0) == 0
            and _attribute(producer, "channels", 0) % self.block == 0
        ):
            self.channels[producer.input[0]] = _attribute(producer, "channels", 0)
            return str(producer.input[0])
        return None

    def move(self, node: Any) -> bool:
        if _is(node, "Resize") and _attribute(node, "mode", b"nearest") == b"linear":
            return self.move_resize(node)
        if _is(node, "Concat") and _attribute(node, "axis", 0) in (1, -3):
            sources = [self.blocked(name) for name in node.input]
            if None in sources:
                return False
            total = sum(self.channels[s] for s in sources if s is not None)
            return self.emit(node, [s for s in sources if s is not None], total)
        if _is(node, "Add") and len(node.input) == 2:
            first, second = (self.blocked(name) for name in node.input)
            shape = self.shapes.get(node.input[0])
            if first is None or second is None or shape != self.shapes.get(node.input[1]):
                return False
            return self.emit(node, [first, second], self.channels[first])
        return False

    def move_resize(self, node: Any) -> bool:
        source = self.blocked(node.input[0])
        shape = self.shapes.get(node.input[0])
        sizes = self.initializers.get(node.input[3]) if len(node.input) == 4 else None
        if source is None or shape is None or sizes is None:
            return False
        numpy_helper = self.onnx.numpy_helper
        _, channels, height, width = shape
        batch, out_channels, out_height, out_width = numpy_helper.to_array(sizes).tolist()
        if (batch, out_channels) != (1, channels):
            return False
        groups = channels // self.block
        as_image = self.constant([groups, height, width, self.block])
        wanted = self.constant([groups, out_height, out_width, self.block])
        as_blocks = self.constant([1, channels, out_height, out_width])
        pixels, resized, result = (self.fresh(node.output[0]) for _ in range(3))
        helper = self.onnx.helper
        resize = helper.make_node(
            "Resize", [pixels, node.input[1], node.input[2], wanted], [resized], name=resized
        )
        resize.attribute.extend(node.attribute)
        self.nodes += [
            helper.make_node("Reshape", [source, as_image], [pixels], name=pixels),
            resize,
            helper.make_node("Reshape", [resized, as_blocks], [result], name=result),
        ]
        self.publish(node.output[0], result, channels)
        return True

    def emit(self, node: Any, sources: list[str], channels: int) -> bool:
        """`node` again, on NCHWc inputs, its result published as a twin of its output."""
        result = self.fresh(node.output[0])
        copy = self.onnx.helper.make_node(node.op_type, sources, [result], name=result)
        copy.attribute.extend(node.attribute)
        self.nodes.append(copy)
        self.publish(node.output[0], result, channels)
        return True

    def publish(self, original: str, twin: str, channels: int) -> None:
        self.twins[original] = twin
        self.channels[twin] = channels
        # For consumers that still need NCHW; dropped below when none does.
        self.nodes.append(
            self.onnx.helper.make_node(
                "ReorderOutput",
                [twin],
                [original],
                name=self.fresh(original),
                domain=_NCHWC,
                channels=channels,
                channels_last=0,
            )
        )

    def constant(self, values: list[int]) -> str:
        name = self.fresh("shape")
        self.graph.initializer.append(
            self.onnx.numpy_helper.from_array(np.array(values, dtype=np.int64), name)
        )
        return name

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}__blocked{self.count}"


def _is(node: Any, op_type: str, domain: str = "") -> bool:
    return bool(
        node.op_type == op_type and node.domain in ((domain,) if domain else ("", "ai.onnx"))
    )


def _attribute(node: Any, name: str, default: Any) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            if attribute.type == attribute.INT:
                return attribute.i
            if attribute.type == attribute.STRING:
                return attribute.s
    return default


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """`nodes` without those whose results nothing uses, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]
