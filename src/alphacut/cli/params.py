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
    """--providers and --backend, the same on every command that runs a model."""
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
