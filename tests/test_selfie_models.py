"""MediaPipe's selfie segmentation, converted from TFLite to ONNX as it is fetched: the ONNX
graph against LiteRT running the original file, the masks it makes, and files that do not
convert."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut import DownloadFailed, InvalidModel, new_session
from alphacut.models import ensure_model, find_model, get_spec
from alphacut.models.tflite import tflite_to_onnx
from alphacut.pipeline.predict import predict_mask
from alphacut.pipeline.prepare import prepare
from alphacut.pipeline.resize import lanczos_resize
from helpers import PHOTOS

litert = pytest.importorskip("ai_edge_litert.interpreter")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The original TFLite files, out of the same wheel the registry fetches."""
    from alphacut.models.fetch import from_wheel

    folder = tmp_path_factory.mktemp("tflite")
    found = {}
    for name in ("selfie", "selfie-landscape"):
        source = get_spec(name).package
        assert source is not None
        plain = dataclasses.replace(source, tflite_checksum=None)
        found[name] = folder / f"{name}.tflite"
        from_wheel(plain, source.tflite_checksum, found[name])
    return found


def _litert(path: Path, frame: np.ndarray) -> np.ndarray:
    """LiteRT's output for one NHWC frame: the model as MediaPipe runs it."""
    interpreter = litert.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], frame[None])
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


@pytest.mark.parametrize("name", ["selfie", "selfie-landscape"])
def test_the_onnx_graph_computes_what_litert_computes(
    name: str, tflite_files: dict[str, Path], tmp_path: Path
) -> None:
    converted = tmp_path / f"{name}.onnx"
    tflite_to_onnx(tflite_files[name], converted, purpose="test")
    session = ort.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
    width, height = get_spec(name).input_size
    photo = Image.open(PHOTOS / "girl-1.jpg").convert("RGB").resize((width, height))
    noise = np.random.default_rng(7).random((height, width, 3), dtype=np.float32)
    frames = [np.asarray(photo, dtype=np.float32) / 255, noise]
    batch = np.stack([f.transpose(2, 0, 1) for f in frames])  # two at once: batches work
    ours = session.run(None, {"input": batch})[0]
    assert ours.shape == (2, 1, height, width)
    for frame, mine in zip(frames, ours, strict=True):
        theirs = _litert(tflite_files[name], frame)[0, :, :, 0]
        assert float(np.abs(mine[0] - theirs).max()) < 1e-4
    assert float(ours[0].max()) > 0.99  # the photo has a person in it: the test means something


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 127) & (b > 127)).sum() / max(((a > 127) | (b > 127)).sum(), 1))


def test_a_person_is_found_and_an_empty_scene_stays_empty() -> None:
    """A probability map is used as it is: min-max stretching would turn a scene with no
    one in it into a confident mask of whatever is brightest."""
    selfie, u2net = new_session("selfie"), new_session("u2net")
    person = Image.open(PHOTOS / "girl-1.jpg").convert("RGB")
    assert (
        _iou(np.asarray(predict_mask(selfie, person)), np.asarray(predict_mask(u2net, person)))
        > 0.85
    )
    plants = Image.open(PHOTOS / "plants-1.jpg").convert("RGB")
    empty = np.asarray(predict_mask(selfie, plants))
    assert float((empty > 127).mean()) < 0.01
    # Pixels are scaled by 255, as MediaPipe does, not by the image's brightest value.
    dim = Image.fromarray((np.asarray(person) // 2).astype(np.uint8))
    brightest = int(np.asarray(lanczos_resize(dim, selfie.spec.input_size)).max())
    assert brightest < 150
    assert float(prepare(dim, selfie.spec).max()) == pytest.approx(brightest / 255)


def _wheel(folder: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(folder / "mediapipe-0.10.14-py3-none-any.whl", "w") as wheel:
        wheel.writestr(member, data)
        info = "mediapipe-0.10.14.dist-info"
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mediapipe\nVersion: 0.10.14\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    return index


def _leftovers(tmp_path: Path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_a_tflite_that_does_not_convert_is_invalid_and_leaves_nothing(
    tflite_files: dict[str, Path], local_index: Path, tmp_path: Path
) -> None:
    """MediaPipe's custom operator renamed: a graph this converter cannot know."""
    original = tflite_files["selfie"].read_bytes()
    foreign = original.replace(b"Convolution2DTransposeBias", b"Convolution2DTransposeBiaX")
    spec = get_spec("selfie")
    assert spec.package is not None
    source = dataclasses.replace(
        spec.package,
        tflite_checksum="md5:" + hashlib.md5(foreign).hexdigest(),
        wheel_for=(),
    )
    _wheel(local_index, source.member, foreign)
    with pytest.raises(InvalidModel, match="custom operator 'Convolution2DTransposeBiaX'"):
        ensure_model(dataclasses.replace(spec, package=source))
    assert _leftovers(tmp_path) == []
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(original[: len(original) // 3])
    with pytest.raises(InvalidModel, match="not a TFLite model this can convert"):
        tflite_to_onnx(broken, tmp_path / "broken.onnx", purpose="test")
    assert not (tmp_path / "broken.onnx").exists()


def test_a_tflite_unlike_its_checksum_is_refused_and_leaves_nothing(
    tflite_files: dict[str, Path], local_index: Path, tmp_path: Path
) -> None:
    spec = get_spec("selfie")
    assert spec.package is not None
    source = dataclasses.replace(spec.package, wheel_for=())
    damaged = bytearray(tflite_files["selfie"].read_bytes())
    damaged[-10] ^= 1
    _wheel(local_index, source.member, bytes(damaged))
    with pytest.raises(DownloadFailed, match="checksum"):
        ensure_model(dataclasses.replace(spec, package=source, urls=()))
    assert _leftovers(tmp_path) == []


def test_the_registered_models_are_in_the_cache() -> None:
    for name in ("selfie", "selfie-landscape"):
        assert find_model(get_spec(name)) is not None, f"run `alphacut models pull {name}`"


def test_an_installed_mediapipe_is_never_taken_for_the_converted_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """rembg's wheels hold the very file, so an installed copy is used; mediapipe's holds
    the TFLite file, which is not the ONNX model alphacut runs."""
    from pathlib import PurePosixPath

    from alphacut.models import candidate_paths

    members = [get_spec(n).package.member for n in ("selfie", "u2netp")]  # type: ignore[union-attr]

    class Installed:
        files = tuple(PurePosixPath(m) for m in members)

        def locate_file(self, entry: PurePosixPath) -> Path:
            return tmp_path / entry

    monkeypatch.setattr("alphacut.models.store.metadata.distribution", lambda name: Installed())
    assert not [p for p in candidate_paths(get_spec("selfie")) if p.is_relative_to(tmp_path)]
    assert tmp_path / members[1] in candidate_paths(get_spec("u2netp"))
