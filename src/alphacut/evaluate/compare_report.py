"""The comparison's report: a Markdown table people quote, an HTML page with a contact sheet
people look at, and metrics.json for scripts."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..imagefile.atomic import atomic_write_bytes
from ..metrics import mask_iou
from ..models.registry import default_model
from .compare import THUMBNAIL, ModelResult, thumbnail
from .truth_set import TruthSample, TruthSet

__all__ = ["CompareFiles", "quality_first", "write_compare_report"]

BASELINE = "u2netp"


@dataclass(frozen=True)
class CompareFiles:
    markdown: Path
    html: Path
    metrics: Path


def quality_first(results: Sequence[ModelResult], *, share: float = 0.2) -> ModelResult | None:
    """The lowest-SAD variant among models from package registries whose time per image on
    the most threads is within 1/`share` of plain u2netp's; None without that baseline."""
    base = next((r for r in results if r.variant.label == BASELINE and not r.error), None)
    if base is None or not base.seconds:
        return None
    threads = max(base.seconds)
    limit = base.seconds[threads] / share
    eligible = [
        r
        for r in results
        if not r.error and r.packaged and r.seconds.get(threads, math.inf) <= limit
    ]
    return min(eligible, key=lambda r: r.mean("sad"), default=None)


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def _rows(results: Sequence[ModelResult]) -> list[list[str]]:
    measured = sorted((r for r in results if not r.error), key=lambda r: r.mean("sad"))
    rows = []
    for r in measured:
        rows.append(
            [
                f"`{r.variant.label}`",
                _fmt(r.mean("sad"), 2),
                _fmt(r.mean("sad", held_out=True), 2),
                _fmt(r.mean("mse"), 4),
                _fmt(r.mean("gradient"), 2),
                _fmt(r.mean("connectivity"), 2),
                _fmt(r.mean("iou")),
                _fmt(r.mean("boundary_f")),
                *(_fmt(1 / s, 2) for s in (r.seconds.get(1, math.nan), r.seconds.get(2, math.nan))),
                f"{r.peak_rss_mb:.0f}",
                f"{r.size_mb:.1f}",
                f"{r.load_s:.2f}",
                r.license,
                r.source,
            ]
        )
    return rows


HEADER = [
    "model",
    "SAD",
    "SAD held out",
    "MSE",
    "gradient",
    "connectivity",
    "IoU",
    "boundary F",
    "img/s 1 thread",
    "img/s 2 threads",
    "peak RSS MB",
    "size MB",
    "load s",
    "licence",
    "source",
]


def _agreement(results: Sequence[ModelResult]) -> tuple[list[str], list[list[str]]]:
    """How far the models agree on real photos (no composite, no truth): the mean IoU over
    the photos of each pair's masks, as a matrix; the IoU per photo is in metrics.json."""
    measured = [r for r in results if not r.error and r.photo_masks]
    if len(measured) < 2:
        return [], []
    header = ["mean IoU"] + [f"`{r.variant.label}`" for r in measured]
    rows = []
    for a in measured:
        row = [f"`{a.variant.label}`"]
        for b in measured:
            row.append(_fmt(float(np.mean(list(_pair_iou(a, b).values())))))
        rows.append(row)
    return header, rows


def _pair_iou(a: ModelResult, b: ModelResult) -> dict[str, float]:
    """Per photo both masked, the IoU of a's and b's masks (1.0 where both are empty)."""
    return {
        photo: mask_iou(x, y)
        for photo, x in a.photo_masks.items()
        if (y := b.photo_masks.get(photo)) is not None and x.shape == y.shape
    }


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write_compare_report(
    results: Sequence[ModelResult],
    truth: TruthSet,
    output: Path,
    *,
    machine: str,
    not_measured: dict[str, str],
) -> CompareFiles:
    """report.md, report.html (thumbnails under output/previews/<n>/) and metrics.json."""
    held = sum(s.held_out for s in truth.samples)
    photos = len({s.photo for s in truth.samples})
    backgrounds = len({s.background for s in truth.samples})
    intro = (
        f"Machine: {machine}. Truth set: {len(truth.samples)} composites ({held} held out) of "
        f"{photos} photos over {backgrounds} backgrounds; trimaps where "
        f"a majority of {', '.join(truth.agreeing_models)} agree, solved by closed-form matting. "
        "SAD, gradient and connectivity ÷ 1000 over the whole image, as Composition-1k prints "
        "them; IoU and boundary F at alpha 0.5; speed is remove_image on a decoded composite."
    )
    chosen = quality_first(results)
    base = next((r for r in results if r.variant.label == BASELINE and not r.error), None)
    verdict = (
        f"Quality-first default by the rule (lowest SAD among models from package registries "
        f"at ≥ 1/5 of u2netp's throughput): `{chosen.variant.label}`, at "
        f"{chosen.mean('sad') / base.mean('sad'):.3f}× u2netp's SAD. alphacut's default model "
        f"is `{default_model()}`."
        if chosen and base
        else "No quality-first choice: u2netp was not measured."
    )
    failed = [f"- `{r.variant.label}`: {r.error}" for r in results if r.error]
    missing = [f"- `{name}`: {why}" for name, why in sorted(not_measured.items())]
    agree_header, agree_rows = _agreement(results)
    parts = [
        "# Models compared on exact truth",
        intro,
        _markdown_table(HEADER, _rows(results)),
        verdict,
    ]
    if failed:
        parts += ["Could not be measured:", "\n".join(failed)]
    if missing:
        parts += ["Not measured here:", "\n".join(missing)]
    if agree_rows:
        parts += [
            "## Agreement on real photos (IoU at 0.5)",
            _markdown_table(agree_header, agree_rows),
        ]
    output.mkdir(parents=True, exist_ok=True)
    files = CompareFiles(output / "report.md", output / "report.html", output / "metrics.json")
    atomic_write_bytes(files.markdown, ("\n\n".join(parts) + "\n").encode())
    atomic_write_bytes(files.html, _html(results, truth, output, intro, verdict, missing).encode())
    measured_rows = [r for r in results if not r.error and r.photo_masks]
    metrics = {
        "machine": machine,
        "quality_first": chosen.variant.label if chosen else None,
        "not_measured": not_measured,
        "agreement": {
            f"{a.variant.label} ~ {b.variant.label}": _pair_iou(a, b)
            for i, a in enumerate(measured_rows)
            for b in measured_rows[i + 1 :]
        },
        "results": [
            {
                "variant": r.variant.label,
                **{k: v for k, v in asdict(r).items() if k not in ("variant", "photo_masks")},
                "means": {
                    m: r.mean(m)
                    for m in ("sad", "mse", "gradient", "connectivity", "iou", "boundary_f")
                },
            }
            for r in results
        ],
    }
    atomic_write_bytes(files.metrics, json.dumps(metrics, indent=1, default=str).encode())
    return files


def _html(
    results: Sequence[ModelResult],
    truth: TruthSet,
    output: Path,
    intro: str,
    verdict: str,
    missing: list[str],
) -> str:
    (output / "previews" / "truth").mkdir(parents=True, exist_ok=True)
    sheet_rows = []
    measured = [(n, r) for n, r in enumerate(results) if not r.error]
    for sample in truth.samples:
        _truth_thumbnails(truth, sample, output / "previews" / "truth")
        cells = [
            f'<td><img src="previews/truth/{sample.name}.jpg" alt="composite"></td>',
            f'<td class="checker"><img src="previews/truth/{sample.name}.png" alt="truth"></td>',
        ]
        cells += [
            f'<td class="checker"><img src="previews/{n}/{sample.name}.png" alt="{html.escape(r.variant.label)}"></td>'
            for n, r in measured
        ]
        label = html.escape(sample.name) + (" <em>held out</em>" if sample.held_out else "")
        sheet_rows.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell.strip('`'))}</td>" for cell in row) + "</tr>"
        for row in _rows(results)
    )
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    columns = "".join(f"<th>{html.escape(r.variant.label)}</th>" for _, r in measured)
    absent = "".join(f"<li>{html.escape(line[2:])}</li>" for line in missing)
    return f"""<!doctype html><html lang="en"><meta charset="utf-8">
<title>alphacut: models compared</title>
<style>
body{{font:14px system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 6px;text-align:left}}
.checker{{background:repeating-conic-gradient(#ddd 0 25%,#fff 0 50%) 0 0/16px 16px}}
img{{display:block;max-width:{THUMBNAIL}px;max-height:{THUMBNAIL}px}}
</style>
<h1>Models compared on exact truth</h1><p>{html.escape(intro)}</p>
<table><tr>{heads}</tr>{table}</table><p>{html.escape(verdict)}</p>
{f"<h2>Not measured here</h2><ul>{absent}</ul>" if absent else ""}
<h2>Contact sheet</h2>
<table><tr><th>sample</th><th>composite</th><th>truth</th>{columns}</tr>{"".join(sheet_rows)}</table>
</html>
"""


def _truth_thumbnails(truth: TruthSet, sample: TruthSample, folder: Path) -> None:
    image = truth.image(sample)
    alpha = Image.fromarray(np.rint(truth.alpha(sample) * 255).astype(np.uint8), "L")
    cutout = image.convert("RGBA")
    cutout.putalpha(alpha)
    thumbnail(image, folder / f"{sample.name}.jpg", "JPEG")
    thumbnail(cutout, folder / f"{sample.name}.png")
