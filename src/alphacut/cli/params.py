"""click parameter types: values are validated while parsing, not in command bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import OptionsError
from ..options import RGBA, parse_color, parse_providers


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
        help="ONNX Runtime providers in order, e.g. cuda,cpu. [env: ALPHACUT_PROVIDERS]",
    )(command)
