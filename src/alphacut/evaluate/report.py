"""Write an `EvalReport` to a folder: report.html, metrics.json and plot.png.

report.html is self-contained: its thumbnails and plot are embedded as data URIs, so it
can be mailed or attached to a pull request on its own. Every file is written atomically,
report.html last, so a report.html on disk always has its metrics.json beside it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .. import __version__
from ..imagefile import atomic_write_bytes
from ..metrics import METRICS, Agreement, AgreementSummary, SODResult
from .run import DIFFERENCE_GAIN, EvalReport, ImageResult

__all__ = ["ReportFiles", "SummaryRow", "image_metrics", "summary_rows", "write_report"]

PLOT_MAX_ROWS = 60  # more images than this: the plot shows the worst ones by MAE


@dataclass(frozen=True)
class ReportFiles:
    """Where `write_report` put each file."""

    html: Path
    json: Path
    plot: Path


@dataclass(frozen=True)
class SummaryRow:
    """One summary line: a metric's label, its value and how it was aggregated."""

    key: str
    label: str
    value: float
    note: str


def summary_rows(report: EvalReport) -> list[SummaryRow]:
    """The summary, one row per metric (empty when no image could be scored)."""
    summary = report.summary
    if isinstance(summary, SODResult):
        notes = {
            "mae": "mean over images, lower is better",
            "max_f": "β² = 0.3, max over thresholds of the mean F curve",
            "s_measure": "mean over images",
            "mean_e": "mean over thresholds of the mean E curve",
            "max_e": "max over thresholds of the mean E curve",
        }
        values = asdict(summary.scores)
        rows = [SummaryRow(k, METRICS[k].label, values[k], notes[k]) for k in notes]
        if report.matting is not None:
            matting = asdict(report.matting)
            rows += [
                SummaryRow(k, METRICS[k].label, matting[k], "alpha matting, mean, lower is better")
                for k in _MATTING_KEYS
            ]
        return rows
    if isinstance(summary, AgreementSummary):
        return [
            SummaryRow(
                "iou",
                "IoU",
                summary.mean_iou,
                f"mean; worst {summary.worst_iou:.4f} ({summary.worst_iou_image})",
            ),
            SummaryRow(
                "mae",
                "MAE",
                summary.mean_mae,
                f"mean, lower is better; worst {summary.worst_mae:.4f} ({summary.worst_mae_image})",
            ),
        ]
    return []


_MATTING_KEYS = ("sad", "mse", "gradient", "connectivity")


def image_metrics(result: ImageResult) -> dict[str, float]:
    """One image's scalar scores by metric key; empty when it failed."""
    if isinstance(result.scores, SODResult):
        matting = asdict(result.matting) if result.matting is not None else {}
        return {**asdict(result.scores.scores), **matting}
    if isinstance(result.scores, Agreement):
        return asdict(result.scores)
    return {}


def write_report(report: EvalReport, folder: Path) -> ReportFiles:
    """Write report.html, metrics.json and plot.png into `folder` (created if missing)."""
    files = ReportFiles(folder / "report.html", folder / "metrics.json", folder / "plot.png")
    plot = _plot_png(report)
    atomic_write_bytes(files.plot, plot)
    atomic_write_bytes(files.json, _metrics_json(report).encode("utf-8"))
    atomic_write_bytes(files.html, _html(report, plot).encode("utf-8"))
    return files


def _metric_keys(report: EvalReport) -> list[str]:
    if report.mode == "reference":
        return ["iou", "mae"]
    return ["mae", "max_f", "s_measure", "mean_e", "max_e", *_MATTING_KEYS]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _metrics_json(report: EvalReport) -> str:
    summary: dict[str, Any] | None = None
    if isinstance(report.summary, SODResult):
        summary = {k: _finite(v) for k, v in asdict(report.summary.scores).items()}
        if report.matting is not None:
            summary.update({k: _finite(v) for k, v in asdict(report.matting).items()})
        summary["f_curve"] = [_finite(float(v)) for v in report.summary.f_curve]
        summary["e_curve"] = [_finite(float(v)) for v in report.summary.e_curve]
    elif isinstance(report.summary, AgreementSummary):
        summary = {
            k: _finite(v) if isinstance(v, float) else v for k, v in asdict(report.summary).items()
        }
    against = "ground_truth" if report.mode == "ground-truth" else "reference"
    document = {
        "alphacut": __version__,
        "mode": report.mode,
        "model": {"name": report.model, "path": str(report.model_path)},
        against: {"name": report.against, "path": str(report.against_path)},
        "counts": {
            "images": len(report.images),
            "scored": len(report.images) - len(report.failed),
            "failed": len(report.failed),
        },
        "seconds": round(report.seconds, 3),
        "summary": summary,
        "images": [
            {
                "name": r.name,
                "source": str(r.source),
                "ground_truth": str(r.target) if r.target else None,
                "metrics": {k: _finite(v) for k, v in image_metrics(r).items()} or None,
                "error": r.error,
                "error_type": r.error_type,
            }
            for r in report.images
        ],
        "definitions": {k: METRICS[k].description for k in _metric_keys(report)},
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _data_uri(image: Image.Image | bytes, kind: str = "png") -> str:
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        if kind == "jpeg":
            image.save(buffer, "JPEG", quality=85)
        else:
            image.save(buffer, "PNG")
        data = buffer.getvalue()
    else:
        data = image
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: middle; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fdecea; color: #a40000; }
img.thumb { display: block; max-width: 128px; max-height: 128px; background:
  repeating-conic-gradient(#ddd 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
code { background: #f4f4f4; padding: 0 3px; }
dt { font-weight: 600; }
"""


def _html(report: EvalReport, plot: bytes) -> str:
    e = html.escape
    keys = _metric_keys(report)
    if report.mode == "ground-truth":
        against = f"against the ground truth in <code>{e(report.against)}</code>"
        target_label = "ground truth"
    else:
        against = (
            f"against reference model <b>{e(report.against)}</b> "
            f"(<code>{e(str(report.against_path))}</code>)"
        )
        target_label = "reference"
    scored = len(report.images) - len(report.failed)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>alphacut eval: {e(report.model)} vs {e(report.against)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>alphacut eval</h1>",
        f"<p>Model <b>{e(report.model)}</b> (<code>{e(str(report.model_path))}</code>) "
        f"{against}: {len(report.images)} images, {scored} scored, {len(report.failed)} failed, "
        f"in {report.seconds:.1f} s (alphacut {e(__version__)}).</p>",
        "<h2>Summary</h2>",
    ]
    rows = summary_rows(report)
    if rows:
        parts.append("<table><tr><th>metric</th><th>value</th><th>how</th></tr>")
        parts += [
            f'<tr><td>{e(r.label)}</td><td class="num">{r.value:.4f}</td><td>{e(r.note)}</td></tr>'
            for r in rows
        ]
        parts.append("</table>")
    else:
        parts.append("<p>No image could be scored.</p>")
    parts += [
        "<h2>Per image</h2>",
        f'<p><img src="{_data_uri(plot)}" alt="per-image metrics plot"></p>',
        "<table><tr><th>image</th><th>photo</th><th>prediction</th>",
        f"<th>{target_label}</th><th>difference ×{DIFFERENCE_GAIN}</th>",
        "".join(f"<th>{e(METRICS[k].label)}</th>" for k in keys),
        "</tr>",
    ]
    for result in report.images:
        parts.append(_html_row(result, keys))
    parts.append("</table><h2>Definitions</h2><dl>")
    parts += [f"<dt>{e(METRICS[k].label)}</dt><dd>{e(METRICS[k].description)}</dd>" for k in keys]
    parts.append("</dl></body></html>\n")
    return "\n".join(parts)


def _html_row(result: ImageResult, keys: Sequence[str]) -> str:
    e = html.escape
    name = f"<td>{e(result.name)}</td>"
    if not result.ok:
        message = f"{result.error} [{result.error_type}]"
        return f'<tr class="failed">{name}<td colspan="{4 + len(keys)}">{e(message)}</td></tr>'
    cells = [name]
    previews = result.previews
    if previews is not None:
        cells.append(
            f'<td><img class="thumb" src="{_data_uri(previews.image, "jpeg")}" alt=""></td>'
        )
        cells += [
            f'<td><img class="thumb" src="{_data_uri(p)}" alt=""></td>'
            for p in (previews.prediction, previews.target, previews.difference)
        ]
    else:
        cells.append('<td colspan="4">thumbnails are kept for the worst images only</td>')
    values = image_metrics(result)
    cells += [f'<td class="num">{values[k]:.4f}</td>' for k in keys]
    return f"<tr>{''.join(cells)}</tr>"


def _plot_png(report: EvalReport) -> bytes:
    """Horizontal bars per image: MAE scaled to the largest value, and IoU or max F-measure
    on 0..1. Failed images show "failed"."""
    columns = ["iou", "mae"] if report.mode == "reference" else ["max_f", "mae"]
    results = list(report.images)
    if report.mode == "ground-truth":
        title = f"{report.model} against the ground truth in {report.against}"
    else:
        title = f"{report.model} against {report.against}"
    if len(results) > PLOT_MAX_ROWS:
        results.sort(key=lambda r: image_metrics(r).get("mae", math.inf), reverse=True)
        results = results[:PLOT_MAX_ROWS]
        title += f" ({PLOT_MAX_ROWS} worst images by MAE)"
    font = ImageFont.load_default(size=12)
    name_width, bar_width, row, top, gap = 200, 240, 18, 44, 90
    width = name_width + len(columns) * (bar_width + gap) + 10
    height = top + row * max(1, len(results)) + 10
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 6), title, fill="black", font=font)
    for index, key in enumerate(columns):
        values = [image_metrics(r).get(key) for r in results]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        scale = max(finite, default=0.0) if METRICS[key].lower_is_better else 1.0
        scale = scale if scale > 0 else 1.0
        left = name_width + index * (bar_width + gap)
        better = "lower" if METRICS[key].lower_is_better else "higher"
        draw.text(
            (left, 24), f"{METRICS[key].label} (0..{scale:.3g}, {better} is better)", "black", font
        )
        for position, value in enumerate(values):
            y = top + position * row
            if value is None or not math.isfinite(value):
                draw.text((left, y + 2), "failed", fill=(164, 0, 0), font=font)
                continue
            length = round(bar_width * min(value / scale, 1.0))
            draw.rectangle((left, y + 2, left + max(length, 1), y + row - 3), fill=(70, 130, 180))
            draw.text((left + length + 4, y + 2), f"{value:.4f}", fill="black", font=font)
    for position, result in enumerate(results):
        name = result.name if len(result.name) <= 30 else "…" + result.name[-29:]
        draw.text((8, top + position * row + 2), name, fill="black", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
