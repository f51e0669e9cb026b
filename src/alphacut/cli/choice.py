"""The model, limit and pipeline flags that `remove` and `watch` share, collected into one
`ModelFlags` argument, and turned into a `RemoverRecipe`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..options import SETTINGS, Limits, RemoveOptions, RuntimeOptions, parse_extras
from .params import chosen_settings, runtime_flags, settings_options

if TYPE_CHECKING:
    from ..recipe import RemoverRecipe

__all__ = ["ModelFlags", "cli_limits", "model_flags"]

F = TypeVar("F", bound=Callable[..., Any])

#: How a CLI user raises the pixel limit, in the line that refuses an image over it.
CLI_PIXEL_HINT = "raise it with --max-pixels or ALPHACUT_MAX_PIXELS"


def cli_limits(max_pixels: int | None) -> Limits:
    """The limits of a command with --max-pixels: the flag, else the environment's."""
    limits = Limits(max_pixels=max_pixels) if max_pixels else Limits.from_env()
    return dataclasses.replace(limits, raise_hint=CLI_PIXEL_HINT)


def _options(skip: frozenset[str], frames: bool) -> list[Callable[[Any], Any]]:
    """The shared flags; `frames`: a video command's wording and bounds."""
    jobs_help = (
        "Frames in the model at once, each inference on its share of the cores."
        if frames
        else "Images processed at once."
    )
    what = "videos whose frames are" if frames else "images"
    return [
        click.option(
            "-m",
            "--model",
            default=None,
            help="Registered model name (see `alphacut models list`). [default: u2net; env: ALPHACUT_MODEL]",
        ),
        click.option(
            "--model-path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A custom ONNX model file.",
        ),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(1, 64 if frames else 256),
            help=f"{jobs_help} [default: one per core]",
        ),
        click.option(
            "--max-pixels",
            type=click.IntRange(1),
            help=f"Refuse {what} larger than this many pixels. [env: ALPHACUT_MAX_PIXELS]",
        ),
        click.option(
            "-x",
            "--extras",
            help='rembg\'s model options as JSON, e.g. \'{"sam_prompt": [{"type": "point", '
            '"data": [120, 80], "label": 1}]}\' or \'{"cc": "upper"}\'.',
        ),
        settings_options(skip=skip),
        runtime_flags,
    ]


_SETTING_NAMES = frozenset(row.name for row in SETTINGS) | {"rembg_bgcolor"}


@dataclass(frozen=True)
class ModelFlags:
    """What the shared flags said, before anything is parsed further or loaded."""

    model: str | None = None
    model_path: Path | None = None
    jobs: int | None = None
    max_pixels: int | None = None
    extras: str | None = None
    providers: tuple[str, ...] | None = None
    backend: str | None = None
    fast: bool = False
    accept_licenses: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def runtime(self, workers: int | None = None) -> RuntimeOptions:
        """How the model runs: the flags, else the environment's. `workers`: images at once,
        so each inference gets its share of the cores (None: one image, all cores)."""
        from .._system import thread_share

        return RuntimeOptions.from_env(
            providers=self.providers,
            backend=self.backend,
            fast=self.fast,
            intra_op_threads=thread_share(workers) if workers else None,
        )

    def options(self, output_format: str | None = None) -> RemoveOptions:
        """The image options the settings flags and --extras chose."""
        chosen = chosen_settings(dict(self.settings))
        if self.extras:
            chosen.update(parse_extras(self.extras))
        if output_format and "output_format" not in chosen:
            chosen["output_format"] = output_format
        return RemoveOptions(**chosen)

    def recipe(self, *, workers: int | None, output_format: str | None = None) -> RemoverRecipe:
        """The remover these flags ask for, the one way any command builds one. `workers`:
        images at once (see `runtime`)."""
        from ..recipe import RemoverRecipe

        return RemoverRecipe(
            self.model,
            self.model_path,
            self.options(output_format),
            self.runtime(workers),
            cli_limits(self.max_pixels),
            tuple(self.accept_licenses),
        )


def model_flags(*, skip: frozenset[str] = frozenset(), frames: bool = False) -> Callable[[F], F]:
    """Add the shared flags to a command, which receives them as one `flags: ModelFlags`.
    `skip`: image settings the command has no use for; `frames`: a video command."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def collect(*args: Any, **kwargs: Any) -> Any:
            settings = {k: kwargs.pop(k) for k in list(kwargs) if k in _SETTING_NAMES}
            names = [f for f in ModelFlags.__dataclass_fields__ if f != "settings"]
            flags = ModelFlags(**{k: kwargs.pop(k) for k in names}, settings=settings)
            return command(*args, flags=flags, **kwargs)

        decorated: Any = collect
        for option in reversed(_options(skip, frames)):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate
