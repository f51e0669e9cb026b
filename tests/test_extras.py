"""Each extra's commands in an environment that has only that extra.

Building a virtual environment per extra is too slow for a test run, so the real `alphacut`
runs in a subprocess whose `sitecustomize` marks the other extras' modules as absent
(None in sys.modules: `import x` raises ModuleNotFoundError and `find_spec("x")` answers
None, exactly as when x is not installed). Which modules an extra brings is read from
pyproject.toml, so an extra that forgets a module its commands need fails here.

A command that needs a missing extra must end in one line, `alphacut: error: ...
pip install 'alphacut[extra]' [MissingDependency]`, exit 69, and no traceback. The Ray and
storage extras' own commands run in test_ray_engine.py and test_storage.py (they need a
cluster and an S3 server); here they only fail cleanly without their extra.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut._extras import EXTRAS
from helpers import PHOTOS

tomllib = pytest.importorskip("tomllib")

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: Extras that are no feature of their own: a GPU build of a core dependency, a core
#: dependency again, an alias, and the bundles.
NOT_FEATURES = {"gpu", "tools", "fast", "all", "dev"}

SITECUSTOMIZE = """\
import os, sys

for _name in filter(None, os.environ.get("ALPHACUT_TEST_ABSENT", "").split(",")):
    sys.modules[_name] = None
"""


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0)


@functools.cache
def _project() -> dict[str, list[str]]:
    with PYPROJECT.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return {"": project["dependencies"], **project["optional-dependencies"]}


@functools.cache
def _modules_of(distribution: str) -> frozenset[str]:
    """The top-level modules a distribution installs (a guess from its name if absent)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    found = {
        module
        for module, owners in metadata.packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() == wanted for d in owners)
        and not module.startswith("_")
    }
    return frozenset(found or {distribution.replace("-", "_").lower()})


@functools.cache
def _installed_with(distribution: str) -> frozenset[str]:
    """`distribution` and what it requires in turn (its own extras left out), as installed."""
    found = {distribution}
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return frozenset(found)
    for requirement in requirements:
        if "extra ==" not in requirement:
            found |= _installed_with(_name(requirement))
    return frozenset(found)


def modules_of_extra(extra: str, *, declared_only: bool = False) -> frozenset[str]:
    """Every top-level module pyproject.toml's `extra` installs (following alphacut[...]):
    what it declares and, unless `declared_only`, what those need in turn (pysodmetrics
    brings OpenCV, for one)."""
    modules: set[str] = set()
    for requirement in _project()[extra]:
        name = _name(requirement)
        if name == "alphacut":
            for inner in re.findall(r"\[([^\]]*)\]", requirement)[0].split(","):
                modules |= modules_of_extra(inner.strip(), declared_only=declared_only)
        else:
            for distribution in {name} if declared_only else _installed_with(name):
                modules |= _modules_of(distribution)
    return frozenset(modules)


def optional_modules() -> frozenset[str]:
    core = frozenset().union(*(_modules_of(_name(r)) for r in _project()[""]))
    features = [e for e in _project() if e and e not in NOT_FEATURES]
    return frozenset().union(*(modules_of_extra(e, declared_only=True) for e in features)) - core


def run(
    *args: str,
    only: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    tmp: Path,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real CLI with only the extras `only` (and the core) importable."""
    blocker = tmp / "absent-extras"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    present = frozenset().union(*(modules_of_extra(e) for e in only))
    absent = sorted(optional_modules() - present)
    path = os.pathsep.join([str(blocker), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        [ALPHACUT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": path,
            "ALPHACUT_TEST_ABSENT": ",".join(absent),
            **(env or {}),
        },
    )


def assert_needs(result: subprocess.CompletedProcess[str], extra: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 69, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("alphacut: error: "), result.stderr
    assert lines[0].endswith(f"pip install 'alphacut[{extra}]' [MissingDependency]"), lines[0]


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 160-pixel photo, as JPEG and HEIC, hints painted on it, and a six-frame clip."""
    folder = tmp_path_factory.mktemp("inputs")
    photo = Image.open(PHOTOS / "girl-1.jpg").convert("RGB")
    photo.thumbnail((160, 160))
    photo.save(folder / "photo.jpg", quality=92)
    hints = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    hints.paste((255, 255, 255, 255), (photo.width // 2 - 4, photo.height // 2 - 4,
                                       photo.width // 2 + 4, photo.height // 2 + 4))  # fmt: skip
    hints.save(folder / "hints.png")
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.from_pillow(photo).save(str(folder / "photo.heic"))
    av = pytest.importorskip("av")
    with av.open(str(folder / "clip.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 96, 64
        stream.pix_fmt = "yuv420p"
        for shift in range(6):
            frame = np.roll(np.asarray(photo.resize((96, 64))), shift * 2, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    (folder / "folder").mkdir()
    photo.save(folder / "folder" / "photo.jpg", quality=92)
    return {
        "photo": folder / "photo.jpg",
        "heic": folder / "photo.heic",
        "hints": folder / "hints.png",
        "clip": folder / "clip.mp4",
        "folder": folder / "folder",
    }


def test_every_optional_module_names_the_extra_that_installs_it() -> None:
    """alphacut's table of optional modules agrees with pyproject.toml: the extra a missing
    module's message names really installs that module."""
    for module, (_, extra) in EXTRAS.items():
        if module in optional_modules():
            assert module in modules_of_extra(extra, declared_only=True), (module, extra)
    # OpenCV comes with --refine's extra as well as with video's.
    assert "cv2" in modules_of_extra("matting", declared_only=True)
    assert "cv2" in modules_of_extra("video", declared_only=True)
    assert {"pymatting", "av", "uvicorn", "fastapi", "ray", "fsspec"} <= optional_modules()


def test_the_core_alone(files: dict[str, Path], tmp_path: Path) -> None:
    """Without any extra: a plain cutout works, and each extra's feature says what to install."""
    photo = str(files["photo"])
    out = str(tmp_path / "out.png")
    assert_ok(run("remove", photo, "-o", out, tmp=tmp_path))
    # A new name each time: a taken output would be refused before the missing extra is seen.
    never_written = str(tmp_path / "never.png")
    for flags in (["--refine"], ["--hints", str(files["hints"])], ["-a"], ["-dc"]):
        assert_needs(run("remove", photo, "-o", never_written, *flags, tmp=tmp_path), "matting")
    assert_needs(run("remove", str(files["heic"]), "-o", never_written, tmp=tmp_path), "heif")
    assert_needs(
        run("video", str(files["clip"]), "-o", str(tmp_path / "o.webm"), tmp=tmp_path), "video"
    )
    assert_needs(run("serve", "--port", "0", tmp=tmp_path), "server")
    assert_ok(run("serve", "--help", tmp=tmp_path))
    watched = ["watch", str(files["folder"]), "-o", str(tmp_path / "w"), "--poll", "0.1"]
    assert_needs(run(*watched, tmp=tmp_path), "watch")
    ray = ["remove", str(files["folder"]), "-o", str(tmp_path / "r"), "--engine", "ray"]
    assert_needs(run(*ray, tmp=tmp_path), "ray")
    assert_needs(
        run("remove", "s3://bucket/photo.jpg", "-o", never_written, tmp=tmp_path), "storage"
    )
    assert_needs(run("remove", photo, "-o", "s3://bucket/out.png", tmp=tmp_path), "storage")
    scored = ["eval", photo, "--gt", str(files["folder"]), "-o", str(tmp_path / "e")]
    assert_needs(run(*scored, tmp=tmp_path), "eval")
    # A float16 model is converted from its original: the extra is asked for before the
    # original's download (there is no network here to download it from).
    empty = {"U2NET_HOME": str(tmp_path / "models"), "ALPHACUT_MODEL_MIRROR": "http://127.0.0.1:9/"}
    assert_needs(run("models", "pull", "birefnet-general-fp16", env=empty, tmp=tmp_path), "fp16")
    # --fast without OpenVINO runs on ONNX Runtime's INT8, and says so.
    fast = run("remove", photo, "-o", str(tmp_path / "fast.png"), "--fast", tmp=tmp_path)
    assert_ok(fast)
    assert "fast path: u2netp INT8 on ONNX Runtime" in fast.stderr


def test_matting_alone(files: dict[str, Path], tmp_path: Path) -> None:
    """--refine and --hints are documented as needing only alphacut[matting]; so are -a, -dc."""
    photo = str(files["photo"])
    for flags in (["--refine"], ["--hints", str(files["hints"])], ["-a"], ["-dc"]):
        out = tmp_path / f"{flags[0].strip('-')}.png"
        assert_ok(run("remove", photo, "-o", str(out), *flags, only=("matting",), tmp=tmp_path))
        assert Image.open(out).mode == "RGBA"
    assert_needs(
        run(
            "video",
            str(files["clip"]),
            "-o",
            str(tmp_path / "o.webm"),
            only=("matting",),
            tmp=tmp_path,
        ),
        "video",
    )


def test_heif_alone(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    assert_ok(run("remove", str(files["heic"]), "-o", str(out), only=("heif",), tmp=tmp_path))
    assert Image.open(out).size == Image.open(files["photo"]).size


def test_video_alone(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    assert_ok(run("video", str(files["clip"]), "-o", str(out), only=("video",), tmp=tmp_path))
    assert len(list(out.glob("*.png"))) == 6
    # Smoothing's OpenCV is video's; refinement still needs pymatting.
    refine = ["remove", str(files["photo"]), "-o", str(tmp_path / "r.png"), "--refine"]
    assert_needs(run(*refine, only=("video",), tmp=tmp_path), "matting")


def test_eval_alone(files: dict[str, Path], tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    Image.new("L", Image.open(files["photo"]).size, 255).save(truth / "photo.png")
    report = tmp_path / "report"
    scored = ["eval", str(files["photo"]), "--gt", str(truth), "-o", str(report), "--no-progress"]
    result = run(*scored, only=("eval",), tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (report / "metrics.json").is_file()


def test_server_alone_starts(tmp_path: Path) -> None:
    """`alphacut serve` with only alphacut[server] starts listening (video then answers 501,
    not at start-up), and stops cleanly."""
    blocker_env = run("--version", only=("server",), tmp=tmp_path)  # writes the blocker
    assert blocker_env.returncode == 0, blocker_env.stderr
    present = frozenset().union(modules_of_extra("server"))
    absent = ",".join(sorted(optional_modules() - present))
    path = os.pathsep.join([str(tmp_path / "absent-extras"), os.environ.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [ALPHACUT, "serve", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "ALPHACUT_TEST_ABSENT": absent},
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        for line in process.stderr:
            seen.append(line)
            if "Uvicorn running on" in line or "Traceback" in line:
                break
        assert any("Uvicorn running on" in line for line in seen), "".join(seen)
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
    assert "Traceback" not in "".join(seen) + rest, "".join(seen) + rest
