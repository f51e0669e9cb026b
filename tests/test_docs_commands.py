"""Every command block of the README and docs/ runs as written, so no example can rot.

Each ```sh block runs as one bash script, and each ```python block as one script, in a fresh
folder of real files named as the examples name them (photo.jpg, photos/, clip.mp4, …).
`alphacut serve` starts in the background on a free port (the examples' 7000 is rewritten),
and a block that talks to 127.0.0.1:7000 without starting a server gets one. `alphacut watch`
runs until it has caught up on its folder, then a signal stops it. curl fails on an HTTP
error. Commands that cannot run on a machine with no network but the package index (model
hubs, object stores, clusters, package installs) or that take many minutes are left out one
by one, each with its reason, and the test fails if a block is left with nothing to run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from helpers import PHOTOS, skimage_photo
from live import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(document: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = document.read_text().splitlines()
    start, language = None, ""
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, language = number, line[3:].strip()
            else:
                if language in ("sh", "python"):
                    blocks.append(
                        Block(document, start, language, "\n".join(lines[start : number - 1]))
                    )
                start = None
    return blocks


# Blocks found failing at the end of a session, not yet examined: each is a known defect.
NOT_YET_PASSING = {}

BLOCKS = [block for document in DOCUMENTS for block in code_blocks(document)]


def _hub_models() -> frozenset[str]:
    from alphacut.models.registry import MODELS

    return frozenset(
        name for name, spec in MODELS.items() if spec.package is None and not spec.is_custom
    )


def not_here(command: str) -> str | None:
    """Why `command` cannot run in this test, or None."""
    reasons = [
        (r"\bpip install\b", "installs packages"),
        (r"^make\b", "a Makefile target (CI runs `make test`)"),
        (r"\b(s3|gs|az)://", "needs an object store"),
        (r"--ray-address|\bray job submit\b", "needs a standing Ray cluster"),
        (r"\bint8/", "a reproduction recipe, run in a checkout, that takes many minutes"),
    ]
    for pattern, reason in reasons:
        if re.search(pattern, command):
            return reason
    words = set(re.findall(r"[\w.-]+", command))
    hub = sorted(words & _hub_models())
    if hub and re.search(r"(^|\s)(-m|--model|models pull)\b", command):
        return f"downloads {', '.join(hub)} from a model hub"
    return None


def commands(text: str) -> list[str]:
    """The block's commands, continuation lines and here-documents kept whole."""
    found: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        command = lines[index]
        index += 1
        while command.endswith("\\") and index < len(lines):
            command += "\n" + lines[index]
            index += 1
        heredoc = re.search(r"<<-?'?(\w+)'?", command)
        if heredoc:
            while index < len(lines):
                command += "\n" + lines[index]
                index += 1
                if lines[index - 1].strip() == heredoc.group(1):
                    break
        found.append(command)
    return found


def script_for(block: Block, port: int) -> tuple[str, list[str]]:
    """The bash script that runs the block here, and the commands left out (with why)."""
    kept: list[str] = []
    left_out: list[str] = []
    serves = False
    for command in commands(block.text):
        stripped = command.strip()
        if not stripped or stripped.startswith("#"):
            continue
        reason = not_here(stripped)
        if reason:
            left_out.append(f"{stripped.splitlines()[0]}  ({reason})")
            continue
        if re.match(r"alphacut serve\b", stripped):
            serves = True
            # A trailing comment would swallow the `&`; a server given no port gets this one.
            command = re.sub(r"\s+#[^'\"]*$", "", command)
            if "--port" not in command:
                command += " --port 7000"
            command = f"{command} & server=$!\nwait_ready"
        elif watched := re.match(r"alphacut watch\s+(\S+).*?\s-o\s+(\S+)", stripped):
            # Runs until a signal. It has caught up on the folder when every file there was
            # moved aside (--done) or has a new output (within a minute); then SIGTERM stops
            # it, and it must exit 0.
            inbox, out = watched.groups()
            caught_up = (
                f'[ -z "$(ls {inbox})" ]'
                if "--done" in stripped
                else f'[ "$(ls {out} | wc -l)" -ge "$((before + files))" ]'
            )
            command = (
                f"mkdir -p {out}; before=$(ls {out} | wc -l); files=$(ls {inbox} | wc -l)\n"
                f"{command} & watcher=$!\n"
                f"for _ in $(seq 600); do {caught_up} && break; sleep 0.1; done\n"
                f'kill -TERM "$watcher"; wait "$watcher"\n{caught_up}'
            )
        kept.append(command)
    body = "\n".join(kept).replace("127.0.0.1:7000", f"127.0.0.1:{port}")
    body = body.replace("--port 7000", f"--port {port}")
    uses_server = f"127.0.0.1:{port}" in body
    prelude = [
        "set -euo pipefail",
        # A block's own -f (a polling loop) wins: curl refuses --fail with --fail-with-body.
        "curl() { local a; for a; do [[ $a =~ ^-[a-zA-Z]*f || $a == --fail ]] && "
        '{ command curl "$@"; return; }; done; '
        'command curl --silent --show-error --fail-with-body "$@"; }',
        "wait_ready() { for _ in $(seq 300); do "
        f"command curl -sf http://127.0.0.1:{port}/readyz >/dev/null && return; sleep 0.2; done; "
        "echo 'server did not get ready' >&2; return 1; }",
        'trap \'[ -n "${server:-}" ] && kill "$server" && wait "$server" || true\' EXIT',
    ]
    if uses_server and not serves:
        prelude.append(f"alphacut serve --host 127.0.0.1 --port {port} & server=$!\nwait_ready")
    return "\n".join([*prelude, body]), left_out


# The files the examples name, made from real photos and clips.


def _photo(path: Path, name: str, width: int = 160) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    skimage_photo(name, width).convert("RGB").save(path)


def _clip(path: Path, photo: str, frames: int = 4) -> None:
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    picture = np.asarray(skimage_photo(photo, 96).convert("RGB").resize((96, 64)))
    codec = "mpeg4" if path.suffix == ".mkv" else "libx264"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for shift in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(picture, 4 * shift, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _strokes(path: Path, size: tuple[int, int]) -> None:
    hints = Image.new("LA", size, (0, 0))
    hints.paste((255, 255), (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2))
    hints.paste((0, 255), (0, 0, size[0] // 8, size[1] // 8))
    path.parent.mkdir(parents=True, exist_ok=True)
    hints.save(path)


@pytest.fixture(scope="module")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    with Image.open(PHOTOS / "car-1.jpg") as image:
        image.convert("RGB").resize((240, 160)).save(root / "photo.jpg")
    for folder, names in {
        "photos": ["rocket", "coffee"],
        "shoots/day1": ["chelsea"],
        "more": ["astronaut"],
        "shots": ["rocket"],
        "inbox": ["coffee"],
        "my-photos": ["rocket", "chelsea"],
        "held-out": ["astronaut"],
        "subjects": ["astronaut", "chelsea"],
        "backgrounds": ["grass", "brick"],
    }.items():
        for name in names:
            _photo(root / folder / f"{name}.jpg", name)
    _strokes(root / "strokes.png", (240, 160))
    with Image.open(root / "shots" / "rocket.jpg") as shot:
        _strokes(root / "strokes" / "rocket.png", shot.size)
    _clip(root / "clip.mp4", "rocket")
    _clip(root / "clip.mov", "rocket")
    _clip(root / "a.mp4", "coffee")
    _clip(root / "b.mkv", "chelsea")
    _clip(root / "beach.mp4", "coffee", frames=2)
    for number, name in enumerate(["rocket", "rocket", "rocket"]):
        _photo(root / "render" / f"frame_{number:04d}.png", name, 96)
    return root


def _grouped(block: Block) -> object:
    """A block that starts a Ray cluster is named for it, so it joins the Ray tests' worker
    (see conftest)."""
    if re.search(r"--engine ray|\bimport ray\b", block.text):
        return pytest.param(block, id=f"{block}-ray")
    return block


@pytest.mark.parametrize("block", [_grouped(block) for block in BLOCKS], ids=str)
def test_the_documented_commands_run(block: Block, example_files: Path, tmp_path: Path) -> None:
    if str(block) in NOT_YET_PASSING:
        pytest.xfail(NOT_YET_PASSING[str(block)])
    folder = tmp_path / "work"
    shutil.copytree(example_files, folder)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    if block.language == "python":
        done = subprocess.run(
            [sys.executable, "-c", block.text], cwd=folder, env=env, capture_output=True,
            text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
        return
    script, left_out = script_for(block, free_port())
    runnable = [c for c in commands(block.text) if c.strip() and not c.strip().startswith("#")]
    if len(left_out) == len(runnable):
        pytest.skip(f"{block}: nothing runs here: {'; '.join(left_out)}")
    done = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{block}\n{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr


def test_every_block_is_seen() -> None:
    """The parser finds the blocks a reader sees, so none is silently left untested."""
    fences = sum(d.read_text().count("```sh") + d.read_text().count("```python") for d in DOCUMENTS)
    assert len(BLOCKS) == fences
    assert any(
        "alphacut remove same" in b.text or "alphacut remove photo.jpg" in b.text for b in BLOCKS
    )


def test_left_out_commands_are_few_and_named() -> None:
    """What the block runner leaves out, listed: a new example that needs the network shows
    up here rather than passing unseen."""
    left = sorted(line for block in BLOCKS for line in script_for(block, 7000)[1])
    assert all("(" in line for line in left)
    assert len(left) <= 25, "\n".join(left)
