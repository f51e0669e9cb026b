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
  operation in either layout;
- optionally, a convolution of concatenated tensors becomes a chain of convolutions, one
  per part, each adding onto the sums of the one before (the NCHWc Conv's "Sum" input), so
  the concatenated copy is never made. Its weights are cut along the input-channel blocks
  of ONNX Runtime's reordered filter layout, and the sums accumulate in the same order.

Whether a rewritten graph really gives the original's outputs bit for bit is not taken
on trust: `open_session` runs both on the same input and keeps the rewrite only if every
output is identical.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["block_size_candidates", "rewrite_in_blocked_layout"]

log = logging.getLogger("alphacut.models")

_NCHWC = "com.microsoft.nchwc"


def block_size_candidates(cpu_features: str) -> tuple[int, ...]:
    """The NCHWc block sizes to try, the one this CPU most likely uses first."""
    return (16, 8) if "avx512f" in cpu_features.split() else (8, 16)


def rewrite_in_blocked_layout(
    optimized: Path, original: Path, block: int, *, split_concatenations: bool = True
) -> bytes | None:
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
    rewrite = _Rewrite(onnx, model.graph, shapes, block)
    moved = rewrite.run()
    if split_concatenations:
        moved += rewrite.split_concatenated_inputs()
    rewrite.drop_unused_initializers()
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
            if _is(node, "ReorderInput", _NCHWC) and node_attribute(node, "channels_last", 0) == 0:
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

    def split_concatenated_inputs(self) -> int:
        """Replace each NCHWc Conv that alone reads a channel Concat by a chain of convolutions."""
        producers = {out: node for node in self.graph.node for out in node.output}
        readers = Counter(name for node in self.graph.node for name in node.input)
        nodes: list[Any] = []
        split = 0
        for node in self.graph.node:
            chain = self.conv_chain(node, producers, readers)
            nodes.extend(chain or [node])
            split += chain is not None
        if split:
            del self.graph.node[:]
            self.graph.node.extend(_live(nodes, {o.name for o in self.graph.output}))
        return split

    def conv_chain(
        self, conv: Any, producers: dict[str, Any], readers: Counter[str]
    ) -> list[Any] | None:
        if (
            not _is(conv, "Conv", _NCHWC)
            or len(conv.input) > 3
            or node_attribute(conv, "group", 1) != 1
        ):
            return None
        concat = producers.get(conv.input[0])
        if (
            concat is None
            or not _is(concat, "Concat")
            or node_attribute(concat, "axis", 0) not in (1, -3)
            or readers[concat.output[0]] != 1
        ):
            return None
        widths = [self.channel_count(name, producers) for name in concat.input]
        weights = self.initializers.get(conv.input[1])
        if weights is None or any(w is None or w % self.block for w in widths):
            return None
        kernel = self.onnx.numpy_helper.to_array(weights)
        outputs, inputs, height, width = kernel.shape
        if inputs != sum(w for w in widths if w) or outputs % self.block:
            return None
        block = self.block
        # ONNX Runtime's NCHWc filters are OIHWBiBo: input-channel blocks are the second axis.
        blocks = kernel.reshape(outputs // block, inputs // block, height, width, block, block)
        chain: list[Any] = []
        start = 0
        running = ""
        helper = self.onnx.helper
        for index, (part, part_width) in enumerate(zip(concat.input, widths, strict=True)):
            assert part_width is not None
            piece = blocks[:, start // block : (start + part_width) // block]
            start += part_width
            piece_name = self.fresh(conv.input[1])
            self.graph.initializer.append(
                self.onnx.numpy_helper.from_array(
                    np.ascontiguousarray(piece).reshape(outputs, part_width, height, width),
                    piece_name,
                )
            )
            self.initializers[piece_name] = self.graph.initializer[-1]
            last = index == len(widths) - 1
            bias = conv.input[2] if last and len(conv.input) == 3 else ""
            result = conv.output[0] if last else self.fresh(conv.output[0])
            node_inputs = [part, piece_name, bias, running] if running else [part, piece_name]
            node = helper.make_node(
                "Conv", node_inputs, [result], name=self.fresh(conv.name), domain=_NCHWC
            )
            # The bias and the fused activation belong to the finished sum only.
            node.attribute.extend(a for a in conv.attribute if last or a.name != "activation")
            chain.append(node)
            running = result
        return chain

    def channel_count(self, name: str, producers: dict[str, Any]) -> int | None:
        """Channels of an NCHWc tensor, from what produced it; None when unknown."""
        if name in self.channels:
            return self.channels[name]
        producer = producers.get(name)
        if producer is None:
            return None
        if _is(producer, "Conv", _NCHWC):
            weights = self.initializers.get(producer.input[1])
            return None if weights is None else int(weights.dims[0])
        if _is(producer, "MaxPool", _NCHWC) or _is(producer, "Add"):
            return self.channel_count(producer.input[0], producers)
        if _is(producer, "Concat"):
            widths = [self.channel_count(part, producers) for part in producer.input]
            return None if None in widths else sum(w for w in widths if w)
        return None

    def drop_unused_initializers(self) -> None:
        used = {name for node in self.graph.node for name in node.input}
        used.update(o.name for o in [*self.graph.input, *self.graph.output])
        kept = [init for init in self.graph.initializer if init.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)

    def blocked(self, name: str) -> str | None:
        """The NCHWc tensor holding `name`'s values, if there is one with aligned channels."""
        if name in self.twins:
            return self.twins[name]
        producer = self.producers.get(name)
        if (
            producer is not None
            and _is(producer, "ReorderOutput", _NCHWC)
            and node_attribute(producer, "channels_last", 0) == 0
            and node_attribute(producer, "channels", 0) % self.block == 0
        ):
            self.channels[producer.input[0]] = node_attribute(producer, "channels", 0)
            return str(producer.input[0])
        return None

    def move(self, node: Any) -> bool:
        if _is(node, "Resize") and node_attribute(node, "mode", b"nearest") == b"linear":
            return self.move_resize(node)
        if _is(node, "Concat") and node_attribute(node, "axis", 0) in (1, -3):
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


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """`nodes` without those whose results nothing uses, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]


def node_attribute(node: Any, name: str, default: Any = None) -> Any:
    """The value of `node`'s attribute `name`, or `default` when it has none."""
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
