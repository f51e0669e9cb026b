"""`load_session`: from a model name, spec or file to a ready session of the right class."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from ..errors import OptionsError
from ..graphs.fast import fast_model_path
from ..models.backends import check_providers
from ..models.fetch import ProgressCallback
from ..models.policy import ModelPolicy
from ..models.registry import ModelSpec, default_model, get_spec
from ..models.session import Session, custom_spec
from ..options import RuntimeOptions

__all__ = ["load_session", "model_policy"]


def load_session(
    model: str | ModelSpec | None = None,
    *,
    model_path: str | Path | None = None,
    runtime: RuntimeOptions | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
    accept_licenses: Iterable[str] = (),
    policy: ModelPolicy | None = None,
) -> Session:
    """Make a ready `Session`.

    model: a registered name (fetched and verified when missing), a `ModelSpec`, or None
    for the default model. With `model_path`, that ONNX file is loaded instead: a named
    model lends its preprocessing (rembg's "u2net_custom", "dis_custom" and "ben_custom"
    are recipes for just that), and with no name the input size is read from the file.
    accept_licenses: model or licence names the user consented to (see ensure_model).
    policy: download, licences and progress in one object (a server's, say); it replaces
    the three separate arguments, which must then keep their defaults.
    Providers that cannot run here fail (ProviderUnavailable) before anything is fetched.
    """
    policy = model_policy(policy, download, progress, accept_licenses)
    runtime = runtime or RuntimeOptions.from_env()
    check_providers(runtime)
    if model_path is not None:
        path = Path(model_path).expanduser()
        if isinstance(model, ModelSpec):
            spec = model
        elif model is None:
            spec = custom_spec(path)
        else:
            base = get_spec(model)
            spec = dataclasses.replace(
                base,
                name=path.stem,
                file_name=path.name,
                checksum=None,
                urls=(),
                package=None,
                derived_from=None,
                license="unknown (custom file)",
                description=f"custom model from {path}",
            )
        return _session_class(spec)(spec, path, runtime)
    spec = model if isinstance(model, ModelSpec) else get_spec(model or default_model())
    path = policy.model_file(spec)
    if runtime.fast:
        path = fast_model_path(spec, path)
    return _session_class(spec)(spec, path, runtime)


def model_policy(
    policy: ModelPolicy | None,
    download: bool,
    progress: ProgressCallback | None,
    accept_licenses: Iterable[str],
) -> ModelPolicy:
    """The one policy a load follows: `policy`, or the one the separate arguments spell."""
    accepted = tuple(accept_licenses)
    if policy is None:
        return ModelPolicy(download=download, accept_licenses=accepted, progress=progress)
    if not download or progress is not None or accepted:
        raise OptionsError("pass either policy= or download=/progress=/accept_licenses=")
    return policy


def _session_class(spec: ModelSpec) -> type[Session]:
    if not spec.segments:
        raise OptionsError(
            f"{spec.name} refines edges and segments nothing by itself: use it with "
            f"vitmatte=True (--vitmatte) and a segmentation model"
        )
    chosen: type[Session] = spec.traits.session_class()
    return chosen
