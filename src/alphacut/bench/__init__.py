"""Benchmarks that compare alphacut with rembg side by side, in one run."""
