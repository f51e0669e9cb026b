"""The public surface, the typed API and its options."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import alphacut
from alphacut import (
    SETTINGS,
    AlphacutError,
    InputError,
    OptionsError,
    RemoveOptions,
    Remover,
    UnsupportedImage,
    parse_color,
    remove,
)
from helpers import PHOTOS, png_bytes, skimage_photo


def test_all_matches_the_exported_names() -> None:
    exported = {name for name in dir(alphacut) if not name.startswith("_")} | {"__version__"}
    assert set(alphacut.__all__) == exported
    for name in alphacut.__all__:
        assert getattr(alphacut, name) is not None


def test_import_is_light() -> None:
    code = "import sys, alphacut, alphacut.cli.main; print(sorted(m for m in ('numpy', 'onnxruntime', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_error_hierarchy_maps_to_codes() -> None:
    assert issubclass(UnsupportedImage, InputError)
    assert issubclass(InputError, AlphacutError)
    assert issubclass(InputError, ValueError)  # rembg callers catching ValueError keep working
    assert UnsupportedImage.http_status == 415
    assert alphacut.ImageTooLarge.http_status == 413
    assert InputError.exit_code == 65
    assert alphacut.ModelError.exit_code == 69


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("255,0,0", (255, 0, 0, 255)),
        ("1, 2, 3, 4", (1, 2, 3, 4)),
        ("#00ff0080", (0, 255, 0, 128)),
        ("#ABCDEF", (171, 205, 239, 255)),
    ],
)
def test_parse_color(text: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_color(text) == expected


@pytest.mark.parametrize("bad", ["red", "1,2", "256,0,0", "1,2,3,4,5", "#12345"])
def test_parse_color_rejects(bad: str) -> None:
    with pytest.raises(OptionsError):
        parse_color(bad)


def test_options_validate_values_and_names() -> None:
    with pytest.raises(OptionsError, match="alpha_matting_foreground_threshold"):
        RemoveOptions(alpha_matting_foreground_threshold=300)
    with pytest.raises(OptionsError, match="output_format"):
        RemoveOptions(output_format="gif")  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="combined"):
        RemoveOptions(bgcolor=(1, 2, 3), background_image=Path("x.png"))
    with pytest.raises(TypeError):
        RemoveOptions(not_an_option=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        remove(b"", unknown_flag=True)  # type: ignore[call-overload]
    assert RemoveOptions(bgcolor=(1, 2, 3)).bgcolor == (1, 2, 3, 255)


def test_settings_table_covers_every_option() -> None:
    names = [s.name for s in SETTINGS]
    assert names == [f for f in RemoveOptions.__dataclass_fields__]
    assert {a for s in SETTINGS for a in s.aliases} >= {"om", "a", "af", "ab", "ae", "ppm", "bgc"}
    from click.testing import CliRunner

    from alphacut.cli.main import cli

    help_text = CliRunner().invoke(cli, ["remove", "--help"]).output
    for setting in SETTINGS:
        assert setting.cli_flag in help_text


def test_remover_writes_each_format(session, tmp_path: Path) -> None:
    remover = Remover(session)
    source = PHOTOS / "car-1.jpg"
    for fmt, magic in [("png", b"\x89PNG"), ("webp", b"RIFF"), ("jpeg", b"\xff\xd8")]:
        target = remover.remove_file(
            source, tmp_path / f"out.{fmt}", RemoveOptions(output_format=fmt)
        )
        data = target.read_bytes()
        assert data.startswith(magic)
        result = Image.open(io.BytesIO(data))
        assert result.size == (480, 360)
        assert result.mode == ("RGB" if fmt == "jpeg" else "RGBA")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpeg", "out.png", "out.webp"]


def test_jpeg_output_puts_the_background_on_white(session) -> None:
    result = Image.open(
        io.BytesIO(
            Remover(session).remove_bytes(PHOTOS / "car-1.jpg", RemoveOptions(output_format="jpeg"))
        )
    )
    corner = np.asarray(result)[:10, :10].astype(int)
    assert corner.min() > 240


def test_icc_profile_is_kept_or_dropped(session) -> None:
    photo = skimage_photo("coffee", 120)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    photo.save(buffer, "PNG", icc_profile=profile)
    remover = Remover(session)
    kept = Image.open(io.BytesIO(remover.remove_bytes(buffer.getvalue())))
    assert kept.info.get("icc_profile") == profile
    dropped = Image.open(
        io.BytesIO(remover.remove_bytes(buffer.getvalue(), RemoveOptions(keep_icc_profile=False)))
    )
    assert "icc_profile" not in dropped.info


def test_background_image_fills_the_transparent_area(session, tmp_path: Path) -> None:
    background = tmp_path / "bg.png"
    Image.new("RGB", (50, 50), (0, 200, 0)).save(background)
    result = Remover(session).remove_image(
        PHOTOS / "car-1.jpg", RemoveOptions(background_image=background)
    )
    pixels = np.asarray(result)
    assert result.size == (480, 360)
    assert (pixels[..., 3] == 255).all()
    assert tuple(pixels[0, 0, :3]) == (0, 200, 0)


def test_only_mask_is_grayscale(session) -> None:
    mask = remove(skimage_photo("astronaut", 128), session=session, only_mask=True)
    assert mask.mode == "L"
    levels = np.asarray(mask)
    assert levels.max() == 255
    assert levels.min() == 0


def test_remove_many_reports_each_file(session, tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    skimage_photo("chelsea", 100).save(source / "nested" / "cat.jpg")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    items = list(Remover(session).remove_many([source], tmp_path / "out"))
    status = {item.task.source.name: (item.status, item.error_type) for item in items}
    assert status == {"cat.jpg": ("done", None), "broken.png": ("failed", "UnsupportedImage")}
    assert (tmp_path / "out" / "nested" / "cat.png").is_file()


def test_bad_input_type_is_a_clear_error(session) -> None:
    with pytest.raises(InputError, match="not supported"):
        remove(12345, session=session)  # type: ignore[call-overload]


def test_tiny_images(session) -> None:
    for size in [(1, 1), (2, 1), (1, 3)]:
        result = remove(png_bytes(Image.new("RGB", size, (200, 10, 10))), session=session)
        assert Image.open(io.BytesIO(result)).size == size


def test_bgcolor_comes_back_in_that_colour(session) -> None:  # type: ignore[no-untyped-def]
    from helpers import skimage_photo

    photo = skimage_photo("chelsea", 200)
    mask = np.asarray(alphacut.remove(photo, session=session, only_mask=True))
    result = np.asarray(alphacut.remove(photo, session=session, bgcolor=(255, 0, 0, 255)))
    background = mask == 0
    assert background.sum() > 1000
    assert (result[background] == (255, 0, 0, 255)).all()
    assert (result[..., 3] == 255).all()


def test_background_image_is_scaled_to_cover_and_centre_cropped(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from helpers import skimage_photo

    photo = skimage_photo("chelsea", 200)  # 200 x 133
    # A 100 x 400 backdrop: left half green, right half blue, a red band across its middle.
    backdrop = np.zeros((400, 100, 3), dtype=np.uint8)
    backdrop[:, :50] = (0, 255, 0)
    backdrop[:, 50:] = (0, 0, 255)
    backdrop[190:210] = (255, 0, 0)
    Image.fromarray(backdrop).save(tmp_path / "backdrop.png")
    remover = alphacut.Remover(session)
    options = alphacut.RemoveOptions(background_image=tmp_path / "backdrop.png")
    result = np.asarray(remover.remove_image(photo, options))
    mask = np.asarray(remover.remove_image(photo, alphacut.RemoveOptions(only_mask=True)))
    assert result.shape == (133, 200, 4)
    # Scaled 2x to 200 x 800 and cropped to its middle rows: the red band lands in the
    # middle of the result, green left and blue right of it.
    clear = mask == 0
    rows, cols = np.nonzero(clear)
    checked = 0
    for y, x in zip(rows[::7], cols[::7], strict=True):
        if abs(y - 47) < 8 or abs(y - 87) < 8 or abs(x - 100) < 8:
            continue  # LANCZOS rings at the bands' edges
        want = 0 if 47 <= y < 87 else (1 if x < 100 else 2)  # red, green or blue
        assert int(np.argmax(result[y, x, :3])) == want, (y, x, result[y, x])
        assert result[y, x, want] > 200
        checked += 1
    assert checked > 50


# The README's "typed API" example, word for word (the README is not parsed: it is being
# rewritten; keep this copy in step with it). It must run on a machine without CUDA.
README_TYPED_API = """
from alphacut import Remover, RemoveOptions, RuntimeOptions, Limits

remover = Remover(
    "u2netp",                                            # or model_path="custom.onnx"
    options=RemoveOptions(output_format="webp", bgcolor=None, keep_icc_profile=True),
    runtime=RuntimeOptions(providers=("CUDAExecutionProvider", "CPUExecutionProvider")),
    limits=Limits(max_pixels=40_000_000),
)
image = remover.remove_image("photo.jpg")              # PIL image (RGBA, or L for only_mask)
data = remover.remove_bytes(upload_bytes)              # encoded in options.output_format
remover.remove_file("in.jpg", "out.webp")              # atomic write
for item in remover.remove_many(["photos/"], "out/"):  # BatchItem per file; never raises per file
    print(item.task.source, item.status, item.error)
"""


def test_the_readme_typed_api_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ALPHACUT_PROVIDERS", raising=False)
    monkeypatch.chdir(tmp_path)
    car = (PHOTOS / "car-1.jpg").read_bytes()
    (tmp_path / "photo.jpg").write_bytes(car)
    (tmp_path / "in.jpg").write_bytes((PHOTOS / "horse.jpg").read_bytes())
    (tmp_path / "photos").mkdir()
    for name in ("boat.jpg", "bike.jpg"):
        (tmp_path / "photos" / name).write_bytes((PHOTOS / name).read_bytes())
    scope: dict[str, object] = {"upload_bytes": car}
    exec(compile(README_TYPED_API, "README.md", "exec"), scope)
    image = scope["image"]
    assert isinstance(image, Image.Image)
    assert image.mode == "RGBA"
    data = scope["data"]
    assert isinstance(data, bytes)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    with Image.open(tmp_path / "out.webp") as written:
        assert written.format == "WEBP"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bike.webp", "boat.webp"]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2, printed
    assert all(line.endswith(" done None") for line in printed), printed
