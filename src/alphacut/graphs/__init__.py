"""Rewriting ONNX graphs, above `models/` (which describes, fetches and runs them) and
`pipeline/` (which they run to calibrate and to check what they wrote): `quantize`,
`quantize_search`, `int8`, `fast`, `dynamic_batch`, `export`. The load-time rewrites the
runtime itself applies (`optimized`, `blocked_layout`) live in `models/`. Nothing is
imported here, so importing one module loads only what it needs.
"""
