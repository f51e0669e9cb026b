"""Rewriting ONNX graphs: a room beside `models/`, which describes, fetches and runs them.

Two tiers. The load-time rewrites (`optimized`, the saved graph ONNX Runtime optimised for
this CPU, and `blocked_layout`, kept only when bit-identical) know nothing of alphacut's
models or pipeline, and the runtime in `models/backends` uses them. The tools above them
(`quantize`, `quantize_search`, `int8`, `fast`, `dynamic_batch`, `export`) run real models
to calibrate and to check what they wrote. Nothing is imported here, so importing one
module loads only what it needs.
"""
