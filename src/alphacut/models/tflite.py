"""A TensorFlow Lite segmentation model as an ONNX graph, so it runs where every other
model runs (ONNX Runtime on any provider, OpenVINO, batches, the server, .ort export).

Only the operators of MediaPipe's selfie segmentation models are known, among them
MediaPipe's own `Convolution2DTransposeBias` (a transposed convolution plus a bias, which
stock converters and LiteRT builds without MediaPipe's resolver do not know). A model with
any other operator is refused with InvalidModel rather than converted wrongly.

TFLite computes in NHWC; the ONNX graph computes in NCHW throughout: one Transpose is
avoided at each end by declaring the ONNX input (1, 3, H, W) and output (1, 1, H, W), and
every constant is laid out for NCHW at conversion time. float16 weights behind DEQUANTIZE
are widened to float32 here, so the graph holds no DEQUANTIZE.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import require
from ..errors import InvalidModel
from ..imagefile.atomic import atomic_write_bytes

__all__ = ["tflite_to_onnx"]

_OPSET = 17
_ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}
_SAME, _VALID = 0, 1  # tflite.Padding
_CUSTOM_SAME, _CUSTOM_VALID = 1, 2  # TfLitePadding in a custom op's raw options


def tflite_to_onnx(source: Path, target: Path, *, purpose: str) -> None:
    """Convert the .tflite at `source` to an ONNX file at `target` (written atomically)."""
    tflite = require("tflite", purpose)
    onnx = require("onnx", purpose)
    try:
        data = source.read_bytes()
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = _Converter(tflite, onnx, model).graph()
    except InvalidModel:
        raise
    except Exception as exc:  # a damaged flatbuffer fails anywhere inside the parser
        raise InvalidModel(f"{source.name} is not a TFLite model this can convert: {exc}") from exc
    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", _OPSET)],
        producer_name="alphacut",
    )
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    atomic_write_bytes(target, proto.SerializeToString())


@dataclass
class _Converter:
    tflite: Any
    onnx: Any
    model: Any
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    constants: dict[int, np.ndarray] = field(default_factory=dict)

    def graph(self) -> Any:
        if self.model.SubgraphsLength() != 1:
            raise InvalidModel("a TFLite model with several subgraphs cannot be converted")
        self.sub = self.model.Subgraphs(0)
        if self.sub.InputsLength() != 1 or self.sub.OutputsLength() != 1:
            raise InvalidModel("only a TFLite model with one input and one output converts")
        source, result = self.sub.Inputs(0), self.sub.Outputs(0)
        _, height, width, channels = self._shape(source)
        if channels != 3 or self._shape(result)[3] != 1:
            raise InvalidModel("only an RGB-in, one-channel-out TFLite model converts")
        for index in range(self.sub.TensorsLength()):
            constant = self._buffer(index)
            if constant is not None:
                self.constants[index] = constant
        for position in range(self.sub.OperatorsLength()):
            self._operator(self.sub.Operators(position))
        helper, tensor = self.onnx.helper, self.onnx.TensorProto.FLOAT
        out_height, out_width = self._shape(result)[1:3]
        return helper.make_graph(
            self.nodes,
            "tflite",
            [helper.make_tensor_value_info("input", tensor, ["batch", 3, height, width])],
            [helper.make_tensor_value_info("output", tensor, ["batch", 1, out_height, out_width])],
            self.initializers,
        )

    # -- tensors -------------------------------------------------------------------------

    def _shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.sub.Tensors(index).ShapeAsNumpy())

    def _buffer(self, index: int) -> np.ndarray | None:
        described = self.sub.Tensors(index)
        buffer = self.model.Buffers(described.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return None
        kinds = {0: np.float32, 1: np.float16, 2: np.int32}
        if described.Type() not in kinds:
            raise InvalidModel(f"TFLite tensor type {described.Type()} is not supported")
        raw = buffer.DataAsNumpy().tobytes()
        return np.frombuffer(raw, dtype=kinds[described.Type()]).reshape(self._shape(index))

    def _name(self, index: int) -> str:
        if index == self.sub.Inputs(0):
            return "input"
        if index == self.sub.Outputs(0):
            return "output"
        return f"t{index}"

    def _constant(self, values: np.ndarray, hint: str) -> str:
        name = f"c{len(self.initializers)}_{hint}"
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.ascontiguousarray(values), name)
        )
        return name

    def _operand(self, index: int) -> str:
        """A tensor as an ONNX input: a live tensor by name, a constant laid out NCHW."""
        if index not in self.constants:
            return self._name(index)
        values = self.constants[index].astype(np.float32)
        if values.ndim == 4:
            values = values.transpose(0, 3, 1, 2)
        elif values.ndim == 1:
            values = values.reshape(1, -1, 1, 1)
        return self._constant(values, "operand")

    def _emit(self, op_type: str, inputs: list[str], output: str, **attributes: Any) -> None:
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [output], **attributes))

    def _activated(
        self, op_type: str, inputs: list[str], output: int, fused: int, **attributes: Any
    ) -> None:
        """`op_type` then its fused activation, written to tensor `output`."""
        if fused not in _ACTIVATIONS:
            raise InvalidModel(f"fused activation {fused} is not supported")
        final = self._name(output)
        activation = _ACTIVATIONS[fused]
        first = final if activation is None else f"{final}_linear"
        self._emit(op_type, inputs, first, **attributes)
        if activation == "Relu":
            self._emit("Relu", [first], final)
        elif activation == "Relu6":
            low = self._constant(np.array(0, np.float32), "zero")
            high = self._constant(np.array(6, np.float32), "six")
            self._emit("Clip", [first, low, high], final)

    # -- operators -----------------------------------------------------------------------

    def _operator(self, op: Any) -> None:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = self._builtin(op)
        ops = self.tflite.BuiltinOperator
        inputs = [op.Inputs(i) for i in range(op.InputsLength())]
        output = op.Outputs(0)
        if builtin == ops.CUSTOM:
            name = code.CustomCode().decode()
            if name != "Convolution2DTransposeBias":
                raise InvalidModel(f"TFLite custom operator {name!r} is not supported")
            self._transpose_conv_bias(op, inputs, output)
            return
        handlers = {
            ops.DEQUANTIZE: self._dequantize,
            ops.CONV_2D: self._conv,
            ops.DEPTHWISE_CONV_2D: self._depthwise,
            ops.ADD: self._binary,
            ops.MUL: self._binary,
            ops.AVERAGE_POOL_2D: self._average_pool,
            ops.RESIZE_BILINEAR: self._resize,
            ops.MEAN: self._mean,
        }
        unary = {ops.RELU: "Relu", ops.LOGISTIC: "Sigmoid", ops.HARD_SWISH: "HardSwish"}
        if builtin in unary:
            self._emit(unary[builtin], [self._operand(inputs[0])], self._name(output))
        elif builtin in handlers:
            handlers[builtin](op, inputs, output)
        else:
            names = {v: k for k, v in vars(ops).items() if not k.startswith("_")}
            raise InvalidModel(f"TFLite operator {names.get(builtin, builtin)} is not supported")

    def _options(self, op: Any, kind: str) -> Any:
        options = getattr(self.tflite, kind)()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        return options

    def _dequantize(self, op: Any, inputs: list[int], output: int) -> None:
        if inputs[0] not in self.constants:
            raise InvalidModel("DEQUANTIZE of a live tensor is not supported")
        self.constants[output] = self.constants[inputs[0]].astype(np.float32)

    def _pads(
        self,
        source: int,
        kernel: tuple[int, int],
        strides: tuple[int, int],
        dilation: tuple[int, int],
        same: bool,
    ) -> list[int]:
        """ONNX pads (top, left, bottom, right) for TFLite's SAME or VALID padding."""
        if not same:
            return [0, 0, 0, 0]
        begins, ends = [], []
        for size, k, s, d in zip(self._shape(source)[1:3], kernel, strides, dilation, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            begins.append(total // 2)
            ends.append(total - total // 2)
        return begins + ends

    def _conv(self, op: Any, inputs: list[int], output: int, depthwise: bool = False) -> None:
        options = self._options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        weights = self.constants.get(inputs[1])
        if weights is None:
            raise InvalidModel("a convolution with live weights is not supported")
        if depthwise:  # (1, kh, kw, channels * multiplier) -> (channels * multiplier, 1, kh, kw)
            kernel = weights.astype(np.float32).transpose(3, 0, 1, 2)
            group = self._shape(inputs[0])[3]
        else:  # (out, kh, kw, in) -> (out, in, kh, kw)
            kernel = weights.astype(np.float32).transpose(0, 3, 1, 2)
            group = 1
        strides = (options.StrideH(), options.StrideW())
        dilation = (options.DilationHFactor(), options.DilationWFactor())
        names = [self._operand(inputs[0]), self._constant(kernel, "weights")]
        if len(inputs) > 2 and inputs[2] >= 0:
            names.append(self._constant(self.constants[inputs[2]].astype(np.float32), "bias"))
        self._activated(
            "Conv",
            names,
            output,
            options.FusedActivationFunction(),
            kernel_shape=list(kernel.shape[2:]),
            strides=list(strides),
            dilations=list(dilation),
            group=group,
            pads=self._pads(
                inputs[0], kernel.shape[2:], strides, dilation, options.Padding() == _SAME
            ),
        )

    def _depthwise(self, op: Any, inputs: list[int], output: int) -> None:
        self._conv(op, inputs, output, depthwise=True)

    def _builtin(self, op: Any) -> int:
        """The operator's code: newer files keep codes past 127 only in the wider field."""
        code = self.model.OperatorCodes(op.OpcodeIndex())
        return int(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))

    def _binary(self, op: Any, inputs: list[int], output: int) -> None:
        adds = self._builtin(op) == self.tflite.BuiltinOperator.ADD
        kind, op_type = ("AddOptions", "Add") if adds else ("MulOptions", "Mul")
        fused = self._options(op, kind).FusedActivationFunction() if op.BuiltinOptions() else 0
        self._activated(op_type, [self._operand(i) for i in inputs], output, fused)

    def _average_pool(self, op: Any, inputs: list[int], output: int) -> None:
        options = self._options(op, "Pool2DOptions")
        kernel = (options.FilterHeight(), options.FilterWidth())
        strides = (options.StrideH(), options.StrideW())
        self._activated(
            "AveragePool",
            [self._operand(inputs[0])],
            output,
            options.FusedActivationFunction(),
            kernel_shape=list(kernel),
            strides=list(strides),
            pads=self._pads(inputs[0], kernel, strides, (1, 1), options.Padding() == _SAME),
            count_include_pad=0,
        )

    def _mean(self, op: Any, inputs: list[int], output: int) -> None:
        """A mean over height and width, keeping them (the squeeze-excite pooling)."""
        axes = self.constants.get(inputs[1])
        keep = self._options(op, "ReducerOptions").KeepDims()
        if axes is None or sorted(int(a) for a in axes.ravel()) != [1, 2] or not keep:
            raise InvalidModel("only a MEAN over height and width, keeping them, is supported")
        self._emit("ReduceMean", [self._operand(inputs[0])], self._name(output), axes=[2, 3])

    def _resize(self, op: Any, inputs: list[int], output: int) -> None:
        options = self._options(op, "ResizeBilinearOptions")
        if options.AlignCorners():
            mode = "align_corners"
        elif options.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        before, after = self._shape(inputs[0])[1:3], self._shape(output)[1:3]
        scales = np.array([1, 1, after[0] / before[0], after[1] / before[1]], np.float32)
        if any(int(b * s) != a for b, s, a in zip(before, scales[2:], after, strict=True)):
            raise InvalidModel("a resize to a size that is no whole scale is not supported")
        self._emit(
            "Resize",
            [self._operand(inputs[0]), "", self._constant(scales, "scales")],
            self._name(output),
            mode="linear",
            coordinate_transformation_mode=mode,
        )

    def _transpose_conv_bias(self, op: Any, inputs: list[int], output: int) -> None:
        """MediaPipe's transposed convolution with a bias; its options are a raw C struct
        (TfLiteTransposeConvParams: padding, stride width, stride height)."""
        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        if len(raw) < 12:
            raise InvalidModel("Convolution2DTransposeBias carries no options")
        padding, stride_w, stride_h = struct.unpack_from("<3i", raw)
        weights = self.constants.get(inputs[1])
        bias = self.constants.get(inputs[2])
        if weights is None or bias is None or padding not in (_CUSTOM_SAME, _CUSTOM_VALID):
            raise InvalidModel(
                "Convolution2DTransposeBias needs constant weights, bias and padding"
            )
        kernel = weights.astype(np.float32).transpose(
            3, 0, 1, 2
        )  # (out, kh, kw, in) -> (in, out, kh, kw)
        pads_begin, pads_end, extra = [], [], []
        for size, out, k, s in zip(
            self._shape(inputs[0])[1:3],
            self._shape(output)[1:3],
            kernel.shape[2:],
            (stride_h, stride_w),
            strict=True,
        ):
            total = (size - 1) * s + k - out
            begin = total // 2 if total > 0 else 0
            pads_begin.append(begin)
            pads_end.append(max(total, 0) - begin)
            extra.append(max(-total, 0))
        self._emit(
            "ConvTranspose",
            [
                self._operand(inputs[0]),
                self._constant(kernel, "weights"),
                self._constant(bias.astype(np.float32), "bias"),
            ],
            self._name(output),
            kernel_shape=list(kernel.shape[2:]),
            strides=[stride_h, stride_w],
            pads=pads_begin + pads_end,
            output_padding=extra,
        )
