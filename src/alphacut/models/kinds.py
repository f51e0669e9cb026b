"""What each kind of model can do, in one table: nothing else in alphacut tests a kind's name.

A registered model names its kind; the session loaded for it, the fast path, batching and
video scheduling all ask the kind's row here. The session classes are named, not imported,
so a kind's class loads only when a model of that kind does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["KINDS", "Kind", "MaskKind"]

MaskKind = Literal["saliency", "portrait", "cloth", "sam", "matting", "recurrent"]


@dataclass(frozen=True)
class Kind:
    """One kind of model.

    session: the session class, as "module:Class" inside alphacut.models.
    segments: makes masks by itself (an edge refiner such as ViTMatte only refines another
    model's). image_input: one NCHW image input, checked when the model loads. labels: the
    output holds class scores per pixel (the class of each pixel is the mask's source).
    batches: runs several images per call through a dynamic-batch copy with identical masks.
    int8: has an INT8 copy for --fast. stateful: carries state from frame to frame, so a
    video's frames go through it one at a time, in order. by_peak: input pixels are scaled
    to 0..1 by the image's brightest value (rembg's rule), else by 255. probability: the
    output is a probability, used as it is, else a saliency map stretched to 0..1 (min-max);
    a probability map of an image with nobody in it stays empty.
    """

    name: MaskKind
    session: str = "session:Session"
    segments: bool = True
    image_input: bool = True
    labels: bool = False
    batches: bool = False
    int8: bool = False
    stateful: bool = False
    by_peak: bool = True
    probability: bool = False

    def session_class(self) -> Any:
        """The session class, imported now (a `Session` subclass)."""
        module, name = self.session.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        # One saliency map, min-max normalised into the mask.
        Kind("saliency", batches=True, int8=True),
        # A person's probability per pixel (MediaPipe's selfie models), pixels over 255.
        Kind("portrait", batches=True, by_peak=False, probability=True),
        # Clothes parsing: upper, lower and full-body categories.
        Kind("cloth", labels=True, int8=True),
        # Segment Anything: an encoder and a prompted decoder.
        Kind("sam", session="sam:SamSession", image_input=False),
        # A trimap-to-alpha edge refiner (ViTMatte).
        Kind("matting", segments=False),
        # Robust Video Matting: recurrent state, at the frame's own size.
        Kind("recurrent", session="recurrent:RecurrentSession", image_input=False, stateful=True),
    )
}
