"""click parameter types: values are validated while parsing, not in command bodies."""

from __future__ import annotations

from typing import Any

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
