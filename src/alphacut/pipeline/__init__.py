"""The image stages between decode and encode: prepare, infer, mask, compose."""

from .compose import apply_background_image, apply_bgcolor, compose, cutout
from .mask import post_process, saliency_to_mask
from .predict import predict_mask
from .prepare import prepare

__all__ = [
    "apply_background_image",
    "apply_bgcolor",
    "compose",
    "cutout",
    "post_process",
    "predict_mask",
    "prepare",
    "saliency_to_mask",
]
