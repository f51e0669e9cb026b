"""click parameter types: values are validated while parsing, not in command bodies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import OptionsError
from ..options import (
    CLOTH_CATEGORIES,
    REFINE_METHODS,
    RGBA,
    SETTINGS,
    parse_color,
    parse_providers,
)


class ColorType(click.ParamType):  # type: ignore[type-arg]
    name = "R,G,B[,A]|#RRGGBB[AA]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> RGBA:
        if isinstance(value, tuple):
            return value
        try:
            return parse_color(str(value))
        except OptionsError as exc:
            self.fail(str(exc), param, ctx)


class ProvidersType(click.ParamType):  # type: ignore[type-arg]
    name = "cpu,cuda,…"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        providers = parse_providers(str(value))
        if not providers:
            self.fail("name at least one provider", param, ctx)
        return providers


COLOR = ColorType()
PROVIDERS = ProvidersType()


F = TypeVar("F", bound=Callable[..., Any])


def runtime_flags(command: F) -> F:
    """--providers, --backend, --fast and --accept-license, the same on every command that
    runs a model."""
    command = click.option(
        "--accept-license",
        "accept_licenses",
        multiple=True,
        metavar="NAME",
        help="Accept a model's non-commercial or copyleft licence (model or licence name; "
        "repeatable). Needed to download e.g. bria-rmbg. [env: ALPHACUT_ACCEPT_LICENSES]",
    )(command)
    command = click.option(
        "--fast",
        is_flag=True,
        help="Run an INT8 copy of the model (built once, cached) on OpenVINO where it is "
        "installed and the CPU has VNNI or AMX, else ONNX Runtime: much faster, masks close to "
        "but not identical with rembg's.",
    )(command)
    command = click.option(
        "--backend",
        type=click.Choice(["onnxruntime", "openvino"]),
        help="Runtime; openvino is faster on CPU but only within ±2 of rembg. [env: ALPHACUT_BACKEND]",
    )(command)
    return click.option(
        "--providers",
        type=PROVIDERS,
        help="ONNX Runtime providers in order of preference, e.g. cuda,cpu: the first one "
        "available runs. One named alone must run. [env: ALPHACUT_PROVIDERS]",
    )(command)


_SPECIAL_TYPES: dict[str, Any] = {
    "bgcolor": COLOR,
    "background_image": click.Path(exists=True, dir_okay=False, path_type=Path),
    "output_format": click.Choice(["png", "webp", "jpeg"]),
    "cloth_category": click.Choice(CLOTH_CATEGORIES),
    "refine": click.Choice(REFINE_METHODS),
    "hints": click.Path(exists=True, path_type=Path),
}


# rembg's -bgc takes four separate integers (`-bgc 255 255 255 255`); alphacut's --bgcolor
# takes one word (`255,255,255` or `#ffffff`). Both spellings must work, so -bgc is its own
# option with rembg's shape.
_REMBG_BGCOLOR = click.option(
    "-bgc",
    "rembg_bgcolor",
    type=(click.IntRange(0, 255),) * 4,
    default=None,
    metavar="R G B A",
    help="rembg's spelling of --bgcolor: four integers 0..255.",
)


def settings_options(skip: frozenset[str] = frozenset()) -> Callable[[F], F]:
    """Add one click option per row of `SETTINGS` (less `skip`), with rembg's short flags as
    aliases; the command receives them as keyword arguments for `chosen_settings`."""

    def decorate(command: F) -> F:
        decorated: F = _add_settings(command, skip)
        return decorated

    return decorate


def chosen_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, as `RemoveOptions` fields."""
    rembg_bgcolor = settings.pop("rembg_bgcolor", None)
    chosen = {k: v for k, v in settings.items() if v is not None}
    if rembg_bgcolor is not None:
        if "bgcolor" in chosen:
            raise click.UsageError("give the background colour once: -bgc or --bgcolor")
        chosen["bgcolor"] = rembg_bgcolor
    return chosen


def _add_settings(command: Any, skip: frozenset[str]) -> Any:
    for setting in reversed(SETTINGS):
        if setting.name in skip:
            continue
        if setting.name == "bgcolor":
            command = _REMBG_BGCOLOR(command)
        flags = [setting.cli_flag] + [
            "-" + a for a in setting.aliases if len(a) <= 3 and a != "bgc"
        ]
        if setting.default is True:
            flags[0] += "/--no-" + setting.cli_flag[2:]
        if isinstance(setting.default, bool):
            option = click.option(
                *flags, setting.name, is_flag=True, default=None, help=setting.help
            )
        else:
            kind = _SPECIAL_TYPES.get(
                setting.name, type(setting.default) if setting.default is not None else str
            )
            shown = f"  [default: {setting.default}]" if setting.default is not None else ""
            if setting.name == "refine":  # --refine alone means --refine auto
                option = click.option(
                    *flags, setting.name, type=kind, default=None, help=setting.help,
                    is_flag=False, flag_value="auto",
                )  # fmt: skip
            else:
                option = click.option(
                    *flags, setting.name, type=kind, default=None, help=setting.help + shown
                )
        command = option(command)
    return command
