"""`alphacut watch`: cut out every file that lands in a folder, until stopped."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from .choice import ModelFlags, model_flags
from .remove import failure_line

if TYPE_CHECKING:
    from ..batch import BatchItem


@click.command("watch")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; it mirrors the watched tree.",
)
@click.option(
    "--done",
    "done_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move each processed input here (mirrored). [default: leave it]",
)
@click.option("--delete-input", is_flag=True, help="Delete each input once its output is written.")
@click.option(
    "--failed",
    "failed_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move inputs that fail here (mirrored), each with a line saying why.",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds a file's size must hold still (and, on Linux, after its writer closed it).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    metavar="SECONDS",
    help="Scan every SECONDS instead of using native file events: for network filesystems.",
)
@click.option(
    "--overwrite", is_flag=True, help="Redo files whose output exists (default: skip them)."
)
@model_flags()
def watch_command(
    input_dir: Path,
    output: Path,
    done_dir: Path | None,
    delete_input: bool,
    failed_dir: Path | None,
    settle: float,
    poll: float | None,
    overwrite: bool,
    flags: ModelFlags,
) -> None:
    """Watch INPUT_DIR (recursively) and cut out each file once it is completely written,
    into the mirrored place under --output, until SIGINT or SIGTERM; then the files in
    progress finish and it exits. Files already there are caught up on at start, and
    existing outputs are skipped, so a restart repeats nothing. Temporary names (.part,
    .crdownload, .tmp) and hidden files are ignored. Takes the options of `remove`."""
    from .._extras import require
    from ..batch import default_jobs
    from ..batch.watch import Watcher, WatchOptions

    require("watchdog", "alphacut watch")  # before the model loads, not after
    workers = flags.jobs or default_jobs()
    recipe = flags.recipe(workers=workers)
    watch = WatchOptions(
        done_dir=done_dir,
        delete_input=delete_input,
        failed_dir=failed_dir,
        settle=settle,
        poll=poll,
        jobs=workers,
        overwrite=overwrite,
    )
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        click.echo("alphacut: stopping once the files in progress are written", err=True)
        stopping.set()
        # A second signal stops at once.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    remover = recipe.build()
    remover.load()  # a model that cannot load fails now, not on the first file
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def report(item: BatchItem) -> None:
        with lock:
            counts[item.status] += 1
            if item.status == "failed":
                click.echo(failure_line(item), err=True)
            elif item.status == "done":
                click.echo(f"alphacut: wrote {item.task.destination}", err=True)
            else:
                click.echo(f"alphacut: skipped {item.task.source}: output exists", err=True)

    watcher = Watcher(remover, input_dir, output, recipe.options, watch, report, stopping)
    click.echo(f"alphacut: watching {input_dir} (Ctrl-C to stop)", err=True)
    watcher.run()
    click.echo(
        f"alphacut: watch stopped: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed",
        err=True,
    )
