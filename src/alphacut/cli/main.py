"""The `alphacut` entry point: a click group whose subcommands are imported on demand.

Errors from the library are turned into one message line and an exit code here,
in one place (see `alphacut.errors` for the codes).
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import click

from .. import __version__

_COMMANDS = {
    "remove": (
        "alphacut.cli.remove",
        "remove_command",
        "Remove backgrounds from files, folders, globs or stdin.",
    ),
    "models": ("alphacut.cli.models", "models_group", "List, fetch, export and quantise models."),
    "serve": ("alphacut.cli.serve", "serve_command", "Run the HTTP service and web page."),
    "eval": (
        "alphacut.cli.evaluate",
        "eval_command",
        "Score masks against ground truth or a reference model.",
    ),
    "compare": (
        "alphacut.cli.compare",
        "compare_command",
        "Measure models against each other on a truth set with exact alpha.",
    ),
    "truth": (
        "alphacut.cli.compare",
        "truth_command",
        "Make a truth set: photos' mattes composited over other backgrounds.",
    ),
    "video": (
        "alphacut.cli.video",
        "video_command",
        "Remove backgrounds from videos: alpha WebM/ProRes, MP4 on a background, PNG frames.",
    ),
    "watch": (
        "alphacut.cli.watch",
        "watch_command",
        "Cut out every file that lands in a folder (recursively), until stopped.",
    ),
    "bench": (
        "alphacut.cli.bench",
        "bench_command",
        "Benchmark the pipeline, against rembg side by side.",
    ),
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        import importlib

        command: click.Command = getattr(importlib.import_module(entry[0]), entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alphacut")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Remove image backgrounds with U²-Net-family models (rembg-compatible)."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(
        level=level, format="alphacut: %(levelname)s: %(message)s", stream=sys.stderr
    )
    from PIL import Image

    # alphacut enforces its own pixel limit; Pillow's warning would only repeat it.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry: runs the CLI and maps alphacut errors to exit codes."""
    from ..errors import AlphacutError

    try:
        return cli.main(args=argv, prog_name="alphacut", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("alphacut: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AlphacutError as exc:
        click.echo(f"alphacut: error: {exc} [{exc.kind}]", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("alphacut: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
