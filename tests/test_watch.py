"""`alphacut watch` as a real process fed by real writes: slow chunked copies, renames from
temporary names, bad files, a restart and SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from alphacut.batch.watch import is_temporary
from helpers import PHOTOS

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def large_photo() -> bytes:
    """A real photo as a JPEG of a few megabytes, so that copying it slowly takes seconds."""
    image = Image.open(PHOTOS / "horse.jpg").convert("RGB")
    image = image.resize((image.width * 3, image.height * 3), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=97)
    return buffer.getvalue()


def reference(tmp_path: Path, source: Path) -> bytes:
    target = tmp_path / "reference" / (source.stem + ".png")
    subprocess.run([ALPHACUT, "remove", str(source), "-o", str(target)], check=True)
    return target.read_bytes()


def wait_for(condition: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has its own SIGTERM handler yet (bit 15 of SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@contextmanager
def watching(*args: str) -> Iterator[subprocess.Popen[str]]:
    """A watch process, yielded once it handles SIGTERM: a signal sent while Python is still
    starting would kill it before it could finish anything."""
    process = subprocess.Popen(
        [ALPHACUT, "watch", *args, "-j", "1"], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: process.poll() is not None or catches_sigterm(process.pid), 60)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[str], how: int = signal.SIGTERM) -> str:
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stderr


@pytest.mark.parametrize("mode", ["events", "polling"])
def test_slow_copy_is_not_taken_half_written(tmp_path: Path, mode: str) -> None:
    inbox, out, done = tmp_path / "in", tmp_path / "out", tmp_path / "done"
    (inbox / "deep" / "er").mkdir(parents=True)
    data = large_photo()
    assert len(data) > 500_000
    flags = ["--poll", "0.2"] if mode == "polling" else []
    with watching(str(inbox), "-o", str(out), "--done", str(done), "--settle", "1", *flags) as p:
        time.sleep(2)  # the observer is up
        target = inbox / "deep" / "er" / "horse.jpg"
        chunk = len(data) // 40
        with target.open("wb") as handle:
            for start in range(0, len(data), chunk):
                handle.write(data[start : start + chunk])
                handle.flush()
                # With native events a writer may stall far past --settle and still not be
                # taken while the file is open. Polling sees only sizes: its stalls are longer
                # than two scans (0.2 s apart) but shorter than --settle, so only the settle
                # wait keeps the file from being taken.
                stalled = start in (chunk * 5, chunk * 15, chunk * 25)
                time.sleep(
                    2.5 if mode == "events" and start == chunk * 10
                    else 0.5 if mode == "polling" and stalled
                    else 0.05
                )  # fmt: skip
                assert not (out / "deep" / "er" / "horse.png").exists(), "taken half-written"
        wait_for(lambda: (done / "deep" / "er" / "horse.jpg").exists())
        stderr = stop(p)
    assert "1 done, 0 skipped, 0 failed" in stderr, stderr
    assert not target.exists()
    assert (out / "deep" / "er" / "horse.png").read_bytes() == reference(
        tmp_path, done / "deep" / "er" / "horse.jpg"
    )


def test_temporary_names_bad_files_and_catch_up(tmp_path: Path) -> None:
    inbox, out, failed = tmp_path / "in", tmp_path / "out", tmp_path / "failed"
    inbox.mkdir()
    photo = (PHOTOS / "car-1.jpg").read_bytes()
    (inbox / "waiting.jpg").write_bytes(photo)  # there before the watcher: caught up on
    with watching(str(inbox), "-o", str(out), "--failed", str(failed), "--settle", "0.5") as p:
        wait_for(lambda: (out / "waiting.png").exists())
        (inbox / "shop").mkdir()
        for name in ("a.jpg.part", "b.jpg.crdownload", "c.tmp", ".hidden.jpg"):
            (inbox / "shop" / name).write_bytes(photo)
        (inbox / "shop" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no photo")
        (inbox / "shop" / "notes.txt").write_text("not an image either")
        (inbox / "shop" / "a.jpg.part").rename(inbox / "shop" / "a.jpg")  # a download ends
        wait_for(lambda: (out / "shop" / "a.png").exists())
        wait_for(lambda: (failed / "shop" / "notes.txt").exists())
        wait_for(lambda: (failed / "shop" / "broken.jpg").exists())
        time.sleep(1.5)
        stderr = stop(p, signal.SIGINT)
    made = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    assert made == ["shop/a.png", "waiting.png"]
    assert f"alphacut: failed: {inbox / 'shop' / 'broken.jpg'}: " in stderr
    assert f"alphacut: failed: {inbox / 'shop' / 'notes.txt'}: " in stderr
    assert "2 done, 0 skipped, 2 failed" in stderr
    for name in ("b.jpg.crdownload", "c.tmp", ".hidden.jpg"):
        assert (inbox / "shop" / name).exists()  # untouched
    assert (inbox / "waiting.jpg").exists()  # no --done: left where it was


def arrive_by_rename(inbox: Path, data: bytes, count: int) -> None:
    """photo-0.jpg … each written under a hidden name and renamed in, as copy tools do."""
    for index in range(count):
        (inbox / f".{index}.jpg").write_bytes(data)
        os.rename(inbox / f".{index}.jpg", inbox / f"photo-{index}.jpg")


def test_sigterm_finishes_the_file_in_progress_and_a_restart_catches_up(tmp_path: Path) -> None:
    inbox, out, done = tmp_path / "in", tmp_path / "out", tmp_path / "done"
    inbox.mkdir()
    data = large_photo()
    with watching(str(inbox), "-o", str(out), "--done", str(done), "--settle", "0.3") as p:
        time.sleep(2)
        arrive_by_rename(inbox, data, 3)
        wait_for(lambda: any(out.glob("*.png")))
        stderr = stop(p)
    outputs = sorted(out.glob("*.png"))
    moved = sorted(done.glob("*.jpg"))
    left = sorted(inbox.glob("*.jpg"))
    assert [o.stem for o in outputs] == [m.stem for m in moved]  # each output's input moved
    assert len(moved) + len(left) == 3  # nothing lost
    for output in outputs:
        Image.open(output).load()  # whole files only
    assert "stopping once the files in progress are written" in stderr

    with watching(str(inbox), "-o", str(out), "--done", str(done), "--settle", "0.3") as p:
        wait_for(lambda: len(list(done.glob("*.jpg"))) == 3)
        stderr = stop(p)
    assert f"{len(left)} done, 0 skipped, 0 failed" in stderr
    first = reference(tmp_path, done / "photo-0.jpg")
    assert all(o.read_bytes() == first for o in sorted(out.glob("*.png")))


def test_delete_input_and_a_folder_moved_in(tmp_path: Path) -> None:
    """A folder renamed into the watched one brings its photos in at once (one event for the
    folder); each is cut out into the mirrored tree, and --delete-input removes its input."""
    inbox, out, staging = tmp_path / "in", tmp_path / "out", tmp_path / "staging"
    inbox.mkdir()
    (staging / "shoes").mkdir(parents=True)
    for name in ("car-1.jpg", "bike.jpg"):
        Image.open(PHOTOS / name).convert("RGB").resize((160, 120)).save(staging / "shoes" / name)
    wanted = {
        name: reference(tmp_path, staging / "shoes" / name) for name in ("car-1.jpg", "bike.jpg")
    }
    with watching(str(inbox), "-o", str(out), "--delete-input", "--settle", "0.3") as p:
        time.sleep(2)
        os.rename(staging / "shoes", inbox / "shoes")
        wait_for(lambda: len(list((out / "shoes").glob("*.png"))) == 2 if out.exists() else False)
        wait_for(lambda: not any((inbox / "shoes").glob("*.jpg")))
        stderr = stop(p)
    assert "2 done, 0 skipped, 0 failed" in stderr, stderr
    for name, data in wanted.items():
        assert (out / "shoes" / name.replace(".jpg", ".png")).read_bytes() == data


def test_sigkill_mid_file_then_a_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """No chance to finish: the file in progress has no output yet, or a whole one whose
    input the restart moves aside without running it again."""
    inbox, out, done = tmp_path / "in", tmp_path / "out", tmp_path / "done"
    inbox.mkdir()
    data = large_photo()
    with watching(str(inbox), "-o", str(out), "--done", str(done), "--settle", "0.3") as p:
        time.sleep(2)
        arrive_by_rename(inbox, data, 3)
        wait_for(lambda: any(out.glob("*.png")))
        p.kill()
        p.wait()
    assert len(list(out.glob("*.png"))) < 3
    with watching(str(inbox), "-o", str(out), "--done", str(done), "--settle", "0.3") as p:
        wait_for(lambda: not any(inbox.iterdir()))
        stderr = stop(p)
    assert "0 failed" in stderr
    assert sorted(f.name for f in done.iterdir()) == [f"photo-{i}.jpg" for i in range(3)]
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".")) == [
        f"photo-{i}.png" for i in range(3)
    ]
    first = reference(tmp_path, done / "photo-0.jpg")
    assert all(o.read_bytes() == first for o in sorted(out.glob("*.png")))


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("a.jpg", False),
        ("sub/a.jpg", False),
        ("a.jpg.part", True),
        ("a.crdownload", True),
        ("a.TMP", True),
        (".a.jpg", True),
        (".sync/a.jpg", True),
        ("a.jpg~", True),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary(Path(name)) is temporary
