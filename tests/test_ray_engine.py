"""`--engine ray` on a real Ray cluster: the same outputs, failure lines, summary, exit code
and resume as the local engine; and `alphacut.ray.RemoveBackground` on a user's dataset."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from alphacut.cli.main import cli
from helpers import PHOTOS
from hostile import make_hostile_folder

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def failure_lines(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("alphacut: failed:"))


def summary(text: str) -> str:
    line = next(line for line in text.splitlines() if " done, " in line)
    return re.sub(r" in [0-9.]+s \([0-9.]+ img/s\)", "", line)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photos in a tree, beside the hostile files of the hostile-input tests."""
    folder = tmp_path_factory.mktemp("mixed")
    make_hostile_folder(folder / "odd")
    for photo in sorted(PHOTOS.glob("*.jpg"))[:4]:
        (folder / "shop").mkdir(exist_ok=True)
        Image.open(photo).resize((320, 240)).save(folder / "shop" / photo.name, quality=90)
    return folder


def test_ray_engine_matches_local_engine(ray_address: str, mixed: Path, tmp_path: Path) -> None:
    runs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        args = ["remove", str(mixed), "-o", str(out), "--no-progress", "--engine", engine]
        runs[engine] = (CliRunner().invoke(cli, args), out)
    (local, local_out), (ray_run, ray_out) = runs["local"], runs["ray"]
    assert local.exit_code == ray_run.exit_code == 1, ray_run.output
    assert outputs(ray_out) == outputs(local_out)
    assert len(outputs(ray_out)) >= 10
    assert failure_lines(ray_run.output) == failure_lines(local.output)
    assert len(failure_lines(ray_run.output)) == 7
    assert "truncated.jpg" in ray_run.output
    assert summary(ray_run.output).replace(str(ray_out), "") == summary(local.output).replace(
        str(local_out), ""
    )


def test_remove_background_on_a_users_dataset(ray_address: str) -> None:
    import ray

    from alphacut import Remover
    from alphacut.ray import RemoveBackground

    photo = (PHOTOS / "car-1.jpg").read_bytes()
    rows = [{"bytes": photo, "name": "car"}, {"bytes": b"not an image", "name": "bad"}]
    dataset = ray.data.from_items(rows).map_batches(
        RemoveBackground,
        fn_constructor_kwargs={"model": "u2netp"},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=1,
        batch_size=2,
    )
    result = {row["name"]: row for row in dataset.take_all()}
    expected = Remover("u2netp").remove_bytes(photo)
    cutout = np.asarray(Image.open(io.BytesIO(result["car"]["cutout"])))
    assert np.array_equal(cutout, np.asarray(Image.open(io.BytesIO(expected))))
    assert result["car"]["error"] == ""
    assert result["bad"]["cutout"] is None
    assert result["bad"]["error"].startswith("UnsupportedImage")

    # Decoded arrays (as read_images gives them) in a column of the user's naming.
    pixels = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB").resize((200, 150)))
    arrays = ray.data.from_items([{"image": pixels, "name": "car"}]).map_batches(
        RemoveBackground,
        fn_constructor_kwargs={"model": "u2netp", "column": "image", "output_column": "png"},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=1,
        batch_size=1,
    )
    (row,) = arrays.take_all()
    assert row["error"] == ""
    assert row["name"] == "car"
    assert row["png"] == Remover("u2netp").remove_bytes(pixels)


def fourteen_photos_on_ray(tmp_path: Path, address: str) -> tuple[Path, Path, list[str]]:
    """A folder of 14 real photos, its output folder, and the command that runs it on the
    cluster at `address`."""
    source = tmp_path / "in"
    source.mkdir()
    for index, photo in enumerate(sorted(PHOTOS.glob("*.jpg"))[:14]):
        Image.open(photo).convert("RGB").save(source / f"{index:02d}-{photo.name}", quality=92)
    out = tmp_path / "out"
    command = [ALPHACUT, "remove", str(source), "-o", str(out), "--no-progress"]
    return source, out, [*command, "--engine", "ray", "--ray-address", address]


def test_interrupted_run_on_a_started_cluster_resumes(ray_address: str, tmp_path: Path) -> None:
    source, out, command = fourteen_photos_on_ray(tmp_path, ray_address)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(outputs(out) if out.exists() else {}) < 2:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    first = outputs(out)
    assert 2 <= len(first) < 14
    for data in first.values():  # whole files only: every output decodes completely
        Image.open(io.BytesIO(data)).load()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    done = re.search(r"(\d+) done, (\d+) skipped, 0 failed of 14", resumed.stderr)
    assert done, resumed.stderr
    assert int(done.group(2)) >= len(first)
    assert int(done.group(1)) + int(done.group(2)) == 14
    local = tmp_path / "local"
    CliRunner().invoke(cli, ["remove", str(source), "-o", str(local), "--no-progress"])
    assert outputs(out) == outputs(local)


def test_no_address_starts_a_local_cluster(ray_address: str, tmp_path: Path) -> None:
    """Even beside a running cluster, no --ray-address (and no RAY_ADDRESS) starts a local
    one, used and shut down by this run alone."""
    source = tmp_path / "in"
    source.mkdir()
    Image.open(PHOTOS / "car-1.jpg").save(source / "car.jpg")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run(
        [ALPHACUT, "remove", str(source), "-o", str(tmp_path / "out"), "--engine", "ray"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"alphacut: failed: {source / 'broken.jpg'}: " in result.stderr
    assert "1 done, 0 skipped, 1 failed of 2" in result.stderr
    assert (tmp_path / "out" / "car.png").is_file()
    # Only alphacut's own lines: no core_worker.cc line about actor restarts, no Ray Data
    # warning about a pool larger than the work.
    assert all(line.startswith("alphacut: ") for line in result.stderr.splitlines()), result.stderr


def test_ray_client_address(ray_head_node: tuple[str, str], tmp_path: Path) -> None:
    """ray://host:port goes through Ray Client, with the same outputs as the local engine."""
    _, client = ray_head_node
    source = tmp_path / "in"
    source.mkdir()
    Image.open(PHOTOS / "bike.jpg").convert("RGB").resize((400, 300)).save(source / "bike.jpg")
    (source / "empty.png").write_bytes(b"")
    command = [ALPHACUT, "remove", str(source), "-o", str(tmp_path / "out"), "--no-progress"]
    result = subprocess.run(
        [*command, "--engine", "ray", "--ray-address", client],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"alphacut: failed: {source / 'empty.png'}: empty file (0 bytes)" in result.stderr
    local = tmp_path / "local"
    CliRunner().invoke(cli, ["remove", str(source), "-o", str(local), "--no-progress"])
    assert outputs(tmp_path / "out") == outputs(local)


def _docstring_example() -> str:
    """The code block of `alphacut.ray`'s docstring, as a user would copy it."""
    import alphacut.ray

    lines = (alphacut.ray.__doc__ or "").split("::\n", 1)[1].splitlines()
    block = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip()


def test_the_documented_example_finishes_on_a_small_cluster(
    ray_head_node: tuple[str, str], tmp_path: Path
) -> None:
    """The example in `alphacut.ray` runs to completion on the 2-CPU test cluster (one with
    `ActorPoolStrategy(size=4), num_cpus=1` left no CPU for the read tasks and never did)."""
    address, _ = ray_head_node
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(PHOTOS.glob("*.jpg"))[:3]:
        Image.open(photo).convert("RGB").resize((160, 120)).save(photos / photo.name)
    example = _docstring_example()
    assert "ActorPoolStrategy" in example
    assert '"s3://bucket/photos/"' in example
    code = "\n".join(
        [
            "import logging, ray",
            f"ray.init(address={address!r}, log_to_driver=False, logging_level=logging.ERROR)",
            "ray.data.DataContext.get_current().enable_progress_bars = False",
            example.replace('"s3://bucket/photos/"', repr(str(photos))),
            "rows = ds.take_all()",
            "print(len(rows), sorted(row['error'] for row in rows), flush=True)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "3 ['', '', '']", result.stdout


def test_an_actor_that_leaves_no_cpu_for_reading_says_so(ray_address: str) -> None:
    """RemoveBackground warns, in the actor's log, when it finds no CPU free for Ray Data's
    read tasks (here: it holds both of the cluster's), and not when one is free."""
    import ray

    @ray.remote
    def construct() -> list[str]:
        import logging

        from alphacut.ray import RemoveBackground

        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record.getMessage())

        logging.getLogger("alphacut.ray").addHandler(Keep())
        RemoveBackground("u2netp")
        return seen

    starved = ray.get(construct.options(num_cpus=2).remote(), timeout=120)
    assert len(starved) == 1, starved
    assert "holds 2 of the cluster's 2 CPUs" in starved[0]
    assert "num_cpus=1 or less" in starved[0]
    assert ray.get(construct.options(num_cpus=1).remote(), timeout=120) == []


def test_a_ray_client_connect_that_fails_once_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray Client's server can fail to start a client's server process (a launcher that exits
    while the proxier reads its command line: psutil.ZombieProcess, seen on a busy head
    node). That race cannot be forced on a real cluster, so Ray's init stands in here, failing
    as it did: the connect is tried again, and a cluster that never answers is one
    ClusterUnavailable line, not an OptionsError."""
    from alphacut import ClusterUnavailable
    from alphacut.engines import ray as engine

    class Ray:
        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, 0

        def is_initialized(self) -> bool:
            return False

        def init(self, **_: object) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise ConnectionAbortedError(
                    "Initialization failure from server:\nTraceback (most recent call last):\n"
                    "  ...\npsutil.ZombieProcess: PID still exists but it's a zombie (pid=4242)"
                )

    monkeypatch.setattr(engine.time, "sleep", lambda _: None)
    once = Ray(failures=1)
    assert engine._connect(once, engine.RayOptions(address="ray://127.0.0.1:10001")) is False
    assert once.calls == 2
    never = Ray(failures=99)
    with pytest.raises(ClusterUnavailable) as failed:
        engine._connect(never, engine.RayOptions(address="ray://127.0.0.1:10001"))
    assert never.calls == 3
    assert str(failed.value) == (
        "cannot join the Ray cluster at 'ray://127.0.0.1:10001': psutil.ZombieProcess: "
        "PID still exists but it's a zombie (pid=4242)"
    )


def test_every_planned_file_is_accounted_for_whatever_rows_come_back() -> None:
    """A row seen twice (a retried block) counts once; a row that never came back is a
    failure with its own line, so the summary can never say "1 done … of 2" and exit 0."""
    from alphacut.batch.plan import Task
    from alphacut.engines.ray import account_for_every_task

    todo = [Task(Path(f"in/{name}.jpg"), Path(f"out/{name}.png")) for name in "abc"]

    def row(index: int) -> dict[str, object]:
        return {"index": index, "status": "done", "error": "", "error_type": "", "seconds": 0.1}

    items = list(account_for_every_task(todo, iter([row(2), row(0), row(2)])))
    assert [(i.task.source.name, i.status) for i in items] == [
        ("c.jpg", "done"), ("a.jpg", "done"), ("b.jpg", "failed"),
    ]  # fmt: skip
    assert items[2].error is not None
    assert "no result" in items[2].error


def _actor_pids() -> list[int]:
    """The processes of the Ray engine's actors (Ray names them after the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"RemoveFiles" in command:
                pids.append(int(entry.name))
    return pids


def test_a_killed_actor_loses_nothing(ray_address: str, tmp_path: Path) -> None:
    """An actor SIGKILLed mid-run: every file is still written once, byte for byte the local
    engine's, nothing partial is left, the summary counts every file, and the terminal gets
    one alphacut line about the lost worker rather than Ray's own tracebacks."""
    source, out, command = fourteen_photos_on_ray(tmp_path, ray_address)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(outputs(out) if out.exists() else {}) < 2 or not _actor_pids():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = _actor_pids()[0]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "14 done, 0 skipped, 0 failed of 14" in stderr
    local = tmp_path / "local"
    CliRunner().invoke(cli, ["remove", str(source), "-o", str(local), "--no-progress"])
    assert outputs(out) == outputs(local)
    assert sorted(p.name for p in out.iterdir()) == sorted(outputs(local))  # nothing partial
    assert stdout == ""
    assert all(line.startswith("alphacut: ") for line in stderr.splitlines()), stderr
    lost = [line for line in stderr.splitlines() if "worker was lost" in line]
    assert len(lost) == 1, stderr
