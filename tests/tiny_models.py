"""Small ONNX files with the inputs and outputs of rembg's models, built in the test run.

Offline, only u2netp's weights can be had; these stand in for the others so that each
model kind's real loading, pre- and post-processing runs, and can be compared with what
rembg's own session classes do with the very same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def pointwise_model(path: Path, side: int, weights: np.ndarray) -> Path:
    """(1, 3, side, side) -> (1, K, side, side): a 1x1 convolution with `weights` (K x 3),
    so each output channel is a fixed mix of the normalised colours."""
    channels = weights.shape[0]
    kernel = numpy_helper.from_array(weights.reshape(channels, 3, 1, 1).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["out"])],
        "pointwise",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels, side, side])],
        [kernel],
    )
    return _save(graph, path)


def sam_models(folder: Path) -> tuple[Path, Path]:
    """A SAM-shaped encoder (HWC 684 x 1024 image -> its mean colour as the "embedding") and
    decoder (a disc of radius 120 canvas pixels around the first prompt point, brighter
    images giving a larger disc), with SAM's input names."""
    encoder = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[0, 1, 2], keepdims=0),
            helper.make_node("Reshape", ["mean", "shape"], ["image_embeddings"]),
        ],
        "sam-encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [684, 1024, 3])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "shape")],
    )
    rows, cols = np.meshgrid(np.arange(684), np.arange(1024), indexing="ij")
    consts = [
        numpy_helper.from_array(cols.astype(np.float32)[None, None], "grid_x"),
        numpy_helper.from_array(rows.astype(np.float32)[None, None], "grid_y"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "two"),
        numpy_helper.from_array(np.array(120.0**2, dtype=np.float32), "radius2"),
        numpy_helper.from_array(np.array(100.0, dtype=np.float32), "brightness"),
    ]
    nodes = [
        # point_coords (1, N, 2): the first point's x and y, shaped (1, 1, 1, 1).
        helper.make_node("Slice", ["point_coords", "zero", "one", "one"], ["first"]),
        helper.make_node("Slice", ["first", "zero", "one", "two"], ["px"]),
        helper.make_node("Slice", ["first", "one", "two", "two"], ["py"]),
        helper.make_node("Unsqueeze", ["px", "zero"], ["px4"]),
        helper.make_node("Unsqueeze", ["py", "zero"], ["py4"]),
        helper.make_node("Sub", ["grid_x", "px4"], ["dx"]),
        helper.make_node("Sub", ["grid_y", "py4"], ["dy"]),
        helper.make_node("Mul", ["dx", "dx"], ["dx2"]),
        helper.make_node("Mul", ["dy", "dy"], ["dy2"]),
        helper.make_node("Add", ["dx2", "dy2"], ["d2"]),
        helper.make_node("Mul", ["image_embeddings", "brightness"], ["grow"]),
        helper.make_node("Add", ["radius2", "grow"], ["reach"]),
        helper.make_node("Sub", ["reach", "d2"], ["masks"]),
        helper.make_node("ReduceMax", ["masks"], ["iou_predictions"], axes=[2, 3], keepdims=0),
        helper.make_node("Identity", ["mask_input"], ["low_res_masks"]),
    ]
    names = [
        ("image_embeddings", [1, 1]),
        ("point_coords", [1, "n", 2]),
        ("point_labels", [1, "n"]),
        ("mask_input", [1, 1, 256, 256]),
        ("has_mask_input", [1]),
        ("orig_im_size", [2]),
    ]
    decoder = helper.make_graph(
        nodes,
        "sam-decoder",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in names],
        [
            helper.make_tensor_value_info("masks", TensorProto.FLOAT, [1, 1, 684, 1024]),
            helper.make_tensor_value_info("iou_predictions", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("low_res_masks", TensorProto.FLOAT, [1, 1, 256, 256]),
        ],
        consts,
    )
    return (
        _save(encoder, folder / "sam_vit_b_01ec64.encoder.onnx"),
        _save(decoder, folder / "sam_vit_b_01ec64.decoder.onnx"),
    )


def batch_bound_model(path: Path, side: int, *, mixes_the_batch: bool) -> Path:
    """(1, 3, side, side) -> (1, 1, side, side), a grey level, that cannot take a batch:
    either it reshapes to a fixed batch of 1 (a runtime error on 2), or it adds the batch's
    mean to every image, so each output depends on the others (a wrong answer on 2)."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["grey"], axes=[1], keepdims=1)]
    tensors = []
    if mixes_the_batch:
        nodes += [
            helper.make_node("ReduceMean", ["grey"], ["mean"], axes=[0], keepdims=1),
            helper.make_node("Add", ["grey", "mean"], ["out"]),
        ]
    else:
        tensors.append(numpy_helper.from_array(np.array([1, 1, side, side], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["grey", "shape"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "batch-bound",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, side, side])],
        tensors,
    )
    return _save(graph, path)
