"""The image stages between decode and encode: prepare, infer, mask, compose."""

from .compose import apply_background_image, apply_bgcolor, compose, stack_vertically
from .edge import Edge, Refiner, cutout, edge_for
from .mask import post_process, saliency_to_mask
from .predict import predict_mask, predict_mask_batch, predict_masks
from .prepare import prepare
from .runner import Given, finish

__all__ = [
    "Edge",
    "Given",
    "Refiner",
    "apply_background_image",
    "apply_bgcolor",
    "compose",
    "cutout",
    "edge_for",
    "finish",
    "post_process",
    "predict_mask",
    "predict_mask_batch",
    "predict_masks",
    "prepare",
    "saliency_to_mask",
    "stack_vertically",
]
