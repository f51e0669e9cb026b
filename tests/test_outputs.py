"""The output rule (alphacut.batch.outputs), as a user meets it through the real `alphacut`:
an input is never overwritten, a single named output is never replaced without --overwrite,
a batch skips what exists and never exits 0 having written nothing, and a wrong -o is
refused before any work."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from helpers import skimage_photo

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def run(*args: str | Path, cwd: Path | None = None, stdin: bytes | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [ALPHACUT, *map(str, args)],
        capture_output=True,
        input=stdin,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "same.png"
    skimage_photo("rocket", 96).save(path)
    return path


@pytest.mark.parametrize("spelling", ["same.png", "./same.png", "../{dir}/same.png"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_input_is_never_its_own_output(photo: Path, spelling: str, overwrite: bool) -> None:
    before = digest(photo)
    target = spelling.format(dir=photo.parent.name)
    code, err = run(
        "remove", "same.png", "-o", target, *["--overwrite"] * overwrite, cwd=photo.parent
    )
    assert code == 73, err
    assert "[OutputIsInput]" in err
    assert "wrote" not in err
    assert digest(photo) == before
    assert files(photo.parent) == ["same.png"]  # no temporary file left either


def test_a_symlinked_output_onto_the_input_is_refused(photo: Path) -> None:
    link = photo.parent / "link.png"
    link.symlink_to(photo)
    before = digest(photo)
    code, err = run("remove", photo, "-o", link, "--overwrite")
    assert code == 73, err
    assert digest(photo) == before


def test_a_single_existing_output_is_refused_unless_overwrite(photo: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut.png"
    target.write_bytes(b"keep me")
    code, err = run("remove", photo, "-o", target)
    assert code == 73, err
    assert f"{target}: exists; --overwrite" in err
    assert target.read_bytes() == b"keep me"
    code, err = run("remove", photo, "-o", target, "--overwrite")
    assert code == 0, err
    assert Image.open(target).mode == "RGBA"


def test_stdin_to_an_existing_file_is_refused(photo: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut.webp"
    target.write_bytes(b"keep me")
    code, err = run("remove", "-", "-o", target, stdin=photo.read_bytes())
    assert code == 73, err
    assert target.read_bytes() == b"keep me"


def test_a_batch_onto_an_existing_file_fails_before_any_work(photo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo.rename(folder / "a.png")
    (tmp_path / "photo.png").write_bytes(b"keep me")
    code, err = run("remove", folder, "-o", tmp_path / "photo.png")
    assert code == 2, err
    assert "is an existing file" in err
    assert "failed" not in err  # refused up front, not once per file after inference
    assert (tmp_path / "photo.png").read_bytes() == b"keep me"


@pytest.mark.parametrize("folder_input", [True, False])
def test_an_unsupported_output_suffix_names_the_formats(
    photo: Path, tmp_path: Path, folder_input: bool
) -> None:
    source = photo.parent if folder_input else photo
    code, err = run("remove", source, "-o", tmp_path / "x.gif")
    assert code == 2, err
    assert "PNG, WebP and JPEG" in err
    assert not (tmp_path / "x.gif").exists()  # no folder named x.gif either


def test_a_suffix_that_contradicts_format_is_refused(photo: Path, tmp_path: Path) -> None:
    code, err = run("remove", photo, "-o", tmp_path / "sf.png", "--format", "jpeg")
    assert code == 2, err
    assert "sf.jpg" in err
    assert not (tmp_path / "sf.png").exists()
    code, err = run("remove", photo, "-o", tmp_path / "sf.jpg", "--format", "jpeg")
    assert code == 0, err
    assert (tmp_path / "sf.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_a_batch_landing_on_its_inputs_is_refused(photo: Path) -> None:
    folder = photo.parent
    before = digest(photo)
    skimage_photo("coffee", 96).save(folder / "b.jpg")
    for output in (".", str(folder)):
        code, err = run("remove", "same.png", "b.jpg", "-o", output, "--overwrite", cwd=folder)
        assert code == 73, err
        assert "[OutputIsInput]" in err
    code, err = run("remove", folder, "-o", folder, cwd=folder)
    assert code == 73, err
    assert "is the output folder" in err
    assert digest(photo) == before
    assert files(folder) == ["b.jpg", "same.png"]


def test_an_output_folder_inside_the_input_is_not_read_back(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    skimage_photo("rocket", 96).save(shop / "a.jpg")
    skimage_photo("coffee", 96).save(shop / "b.png")
    code, err = run("remove", shop, "-o", shop / "out", "--no-progress")
    assert code == 0, err
    # As a shell expands shop/*: the output folder is one of the inputs.
    code, err = run("remove", *sorted(shop.iterdir()), "-o", shop / "out", "--no-progress")
    assert "0 done, 2 skipped, 0 failed of 2" in err
    assert files(shop / "out") == ["a.png", "b.png"]  # no a.png.png


def test_a_batch_that_writes_nothing_does_not_exit_0(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    skimage_photo("rocket", 96).save(shop / "a.jpg")
    out = tmp_path / "out"
    code, err = run("remove", shop, "-o", out, "--no-progress")
    assert (code, "1 done") == (0, err.split("alphacut: ")[-1][:6]), err
    code, err = run("remove", shop, "-o", out, "--no-progress")
    assert code == 1, err
    assert "nothing written: every output already exists (--overwrite redoes them)" in err
    code, err = run("remove", shop, "-o", out, "--no-progress", "--overwrite")
    assert code == 0, err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run("remove", empty, "-o", out)
    assert code == 66, err
    assert "found no files" in err


def test_missing_and_unusable_single_inputs_have_their_codes(tmp_path: Path) -> None:
    code, err = run("remove", tmp_path / "nope.jpg", "-o", tmp_path / "r.png")
    assert code == 66, err
    assert "nope.jpg: no such file [InputNotFound]" in err
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
    code, err = run("remove", pdf, "-o", tmp_path / "r.png")
    assert code == 65, err
    assert "[UnsupportedImage]" in err
    assert not (tmp_path / "r.png").exists()


def test_rembgs_i_style_is_explained(photo: Path, tmp_path: Path) -> None:
    code, err = run("remove", photo, tmp_path / "out.png")
    assert code == 2, err
    assert "out.png was read as an input" in err
    assert f"alphacut remove {photo} -o {tmp_path / 'out.png'}" in err


def test_the_library_refuses_to_write_onto_its_source(photo: Path, session: Any) -> None:
    from alphacut import OutputIsInput, Remover

    before = digest(photo)
    with pytest.raises(OutputIsInput):
        Remover(session).remove_file(photo, photo.parent / "." / photo.name)
    assert digest(photo) == before


# Video follows the same rule.


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    import av

    path = tmp_path / "clip.mp4"
    frame = np.asarray(skimage_photo("rocket", 96).convert("RGB").resize((96, 64)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_video_never_writes_onto_its_input(clip: Path) -> None:
    before = digest(clip)
    for overwrite in ([], ["--overwrite"]):
        code, err = run("video", clip, "-o", clip, "--no-smooth", *overwrite)
        assert code == 73, err
        assert "[OutputIsInput]" in err
    assert digest(clip) == before


def test_video_outputs_follow_the_rule(clip: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut.webm"
    target.write_bytes(b"keep me")
    code, err = run("video", clip, "-o", target, "--no-smooth")
    assert code == 73, err
    assert target.read_bytes() == b"keep me"
    frames = tmp_path / "frames"
    frames.mkdir()  # made beforehand, as many users do: empty, so not an earlier result
    code, err = run("video", clip, "-o", frames, "--no-smooth")
    assert code == 0, err
    assert len(list(frames.glob("*.png"))) == 3
    (frames / "frame_000003.png").unlink()  # as a run stopped before its last frame leaves it
    code, err = run("video", clip, "-o", frames, "--no-smooth")
    assert code == 73, err
    assert "already holds 2 files, from an earlier run (perhaps an interrupted one)" in err
    assert len(list(frames.glob("*.png"))) == 2
    second = tmp_path / "second.mp4"
    second.write_bytes(clip.read_bytes())
    out = tmp_path / "many"
    code, err = run("video", clip, second, "-o", out, "--no-smooth")
    assert code == 0, err
    code, err = run("video", clip, second, "-o", out, "--no-smooth")
    assert code == 1, err
    assert "0 of 2 videos done, 2 skipped, 0 failed" in err
    assert "nothing written" in err
