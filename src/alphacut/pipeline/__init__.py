"""The image stages between decode and encode: prepare, infer, mask, compose."""

from .compose import (
    Refiner,
    apply_background_image,
    apply_bgcolor,
    compose,
    cutout,
    stack_vertically,
)
from .mask import post_process, saliency_to_mask
from .predict import predict_mask, predict_mask_batch, predict_masks
from .prepare import prepare

__all__ = [
    "Refiner",
    "apply_background_image",
    "apply_bgcolor",
    "compose",
    "cutout",
    "post_process",
    "predict_mask",
    "predict_mask_batch",
    "predict_masks",
    "prepare",
    "saliency_to_mask",
    "stack_vertically",
]
