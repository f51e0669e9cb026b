"""A truth set whose alpha is known exactly, made as Composition-1k is made: real subjects
with their mattes composited over other real backgrounds.

No compared model draws a matte by itself. Each photo's trimap is where several models
agree: sure foreground only where every one of them is confident (≥ 240), sure background
only where every one is (≤ 15), both eroded well away from the edge. Closed-form matting
of the original photo solves everything in between, and the foreground colours are
estimated from that alpha. Composited over a background, the matte is then the exact alpha
of the new image.

Samples are split by photo and by background. A photo is held out unless it is one of the
photos alphacut's INT8 copies (--fast) were calibrated on; backgrounds are split by a hash of
their name (`held_out` is the held-out share). A held-out photo is only composited over
held-out backgrounds, so held-out samples share nothing with calibration or tuning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..imagefile import decode
from ..imagefile.atomic import atomic_write_bytes
from ..models.session import Session
from ..pipeline.predict import predict_mask
from .truth_clip import Matte, backdrop, matte_from_photo

__all__ = ["TruthSample", "TruthSet", "load_truth_set", "make_truth_set"]

MANIFEST = "truth.json"
SURE_FOREGROUND, SURE_BACKGROUND = 240, 15


@dataclass(frozen=True)
class TruthSample:
    """One composite: `image` (RGB PNG) and `alpha` (16-bit PNG, its exact alpha), relative
    to the set's folder; the photo and background it was made of; whether it is held out."""

    name: str
    image: str
    alpha: str
    photo: str
    background: str
    held_out: bool


@dataclass(frozen=True)
class TruthSet:
    folder: Path
    samples: tuple[TruthSample, ...]
    agreeing_models: tuple[str, ...]

    def image(self, sample: TruthSample) -> Image.Image:
        with Image.open(self.folder / sample.image) as image:
            rgb: Image.Image = image.convert("RGB")
        return rgb

    def alpha(self, sample: TruthSample) -> np.ndarray:
        """The exact alpha, float32 in 0..1."""
        with Image.open(self.folder / sample.alpha) as image:
            return np.asarray(image, dtype=np.float32) / 65535.0


def _held_out(name: str, share: float) -> bool:
    """A stable choice by name: the same background is held out on every machine."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    return digest / 2**32 < share


def _calibration_names() -> frozenset[str]:
    """The photos --fast's INT8 copies were calibrated on (shipped with alphacut, as
    downscaled copies, so known by name rather than by their bytes)."""
    from importlib import resources

    folder = resources.files("alphacut") / "calibration"
    return frozenset(
        Path(entry.name).stem.lower()
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.endswith(".md")
    )


def agreement_mask(masks: Sequence[Image.Image]) -> Image.Image:
    """255 where a strict majority of the masks is sure of the subject, 0 where a strict
    majority is sure of the background, 128 (unknown) elsewhere. With two masks that is
    both; with three, a model that alone misses what the other two are sure of is
    outvoted, rather than turning that part of the subject into a half-transparent ghost
    that the closed-form solve fills with guesses (u2netp's half-lost arms on girl-1)."""
    stack = np.stack([np.asarray(m.convert("L")) for m in masks])
    majority = len(masks) // 2 + 1
    agreed = np.full(stack.shape[1:], 128, np.uint8)
    agreed[(stack >= SURE_FOREGROUND).sum(axis=0) >= majority] = 255
    agreed[(stack <= SURE_BACKGROUND).sum(axis=0) >= majority] = 0
    return Image.fromarray(agreed, "L")


def _fit(photo: Image.Image, pixels: int) -> Image.Image:
    scale = min(1.0, (pixels / (photo.width * photo.height)) ** 0.5)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def make_truth_set(
    photos: Sequence[Path],
    backgrounds: Sequence[Path],
    output: Path,
    sessions: Sequence[Session],
    *,
    pixels: int = 750_000,
    per_photo: int = 2,
    held_out: float = 0.3,
    band: float = 0.01,
    on_sample: Callable[[TruthSample], None] | None = None,
    on_problem: Callable[[Path, str], None] | None = None,
) -> TruthSet:
    """Composite each photo's subject (scaled to about `pixels`) over `per_photo` of the
    `backgrounds`, chosen in turn from the same part of the split; write the images, their
    alphas and a manifest (truth.json) to `output`. `sessions`: the agreeing models;
    `held_out`: the share of backgrounds held out. A photo that cannot be read, or on which
    the models agree on no sure subject, goes to `on_problem` and the rest go on."""
    if len(sessions) < 2:
        raise ValueError("a trimap from agreement needs at least two models")
    output.mkdir(parents=True, exist_ok=True)
    (output / "images").mkdir(exist_ok=True)
    (output / "alpha").mkdir(exist_ok=True)
    parts: dict[bool, list[Path]] = {True: [], False: []}
    for background in backgrounds:
        parts[_held_out(background.name, held_out)].append(background)
    if not parts[False]:  # every background fell in one part: share them rather than fail
        parts[False] = list(backgrounds)
    if not parts[True]:
        parts[True] = list(backgrounds)
    samples: list[TruthSample] = []
    turn = {True: 0, False: 0}
    calibrated = _calibration_names()
    for photo_path in photos:
        # Held out: never seen by calibration (the INT8 copies') nor tuning.
        hold = photo_path.stem.lower() not in calibrated
        try:
            photo = _fit(decode(photo_path).image, pixels)  # upright, checked for size
            masks = [predict_mask(session, photo) for session in sessions]
            matte = matte_from_photo(photo, agreement_mask(masks), band=band)
        except (InputError, OSError) as exc:
            if on_problem is not None:
                on_problem(photo_path, str(exc))
            continue
        chosen = parts[hold]
        for _ in range(min(per_photo, len(chosen))):
            background_path = chosen[turn[hold] % len(chosen)]
            turn[hold] += 1
            try:
                sample = _write_sample(output, photo_path, background_path, matte, hold)
            except (InputError, OSError) as exc:
                if on_problem is not None:
                    on_problem(background_path, str(exc))
                continue
            samples.append(sample)
            if on_sample is not None:
                on_sample(sample)
    agreeing = tuple(s.spec.name for s in sessions)
    manifest = {
        "agreeing_models": list(agreeing),
        "sure_foreground": SURE_FOREGROUND,
        "sure_background": SURE_BACKGROUND,
        "band": band,
        "pixels": pixels,
        "samples": [asdict(s) for s in samples],
    }
    atomic_write_bytes(output / MANIFEST, json.dumps(manifest, indent=1).encode())
    return TruthSet(output, tuple(samples), agreeing)


def _write_sample(
    output: Path, photo: Path, background: Path, matte: Matte, held_out: bool
) -> TruthSample:
    height, width = matte.alpha.shape
    plate = backdrop(decode(background).image, width, height)
    alpha = matte.alpha[..., None]
    pixels = (alpha * matte.foreground + (1 - alpha) * plate) * 255.0
    composite = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    name = f"{photo.stem}__{background.stem}"
    truth = Image.fromarray(np.rint(matte.alpha * 65535).astype(np.uint16))
    sample = TruthSample(
        name, f"images/{name}.png", f"alpha/{name}.png", photo.name, background.name, held_out
    )
    _save(composite, output / sample.image)
    _save(truth, output / sample.alpha)
    return sample


def _save(image: Image.Image, path: Path) -> None:
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, "PNG")
    atomic_write_bytes(path, buffer.getvalue())


def load_truth_set(folder: Path) -> TruthSet:
    """The truth set written by `make_truth_set` in `folder`."""
    manifest = json.loads((folder / MANIFEST).read_text())
    samples = tuple(TruthSample(**row) for row in manifest["samples"])
    return TruthSet(folder, samples, tuple(manifest["agreeing_models"]))
