"""Evaluation: how good a model's masks are, against ground truth or another model.

    alphacut eval --model u2netp photos/ --gt masks/ -o report/
    alphacut eval --model-path u2netp.int8.onnx --reference-model u2netp photos/ -o report/

`metrics` holds the numbers (pysodmetrics' MAE, F-, S- and E-measures against ground
truth; IoU and MAE against a reference model), `run` runs a loaded model over images
and returns typed results, and `report` writes report.html, metrics.json and plot.png.
Scoring against ground truth needs the `eval` extra (pysodmetrics).
"""

from ..metrics import (
    METRICS,
    Agreement,
    AgreementSummary,
    MetricInfo,
    SODResult,
    SODScores,
    agreement,
    sod_result,
    summarise_agreement,
    summarise_sod,
)
from .report import ReportFiles, SummaryRow, summary_rows, write_report
from .run import (
    EvalReport,
    ImageResult,
    Previews,
    Sample,
    collect_images,
    evaluate_ground_truth,
    evaluate_reference,
)

__all__ = [
    "METRICS",
    "Agreement",
    "AgreementSummary",
    "EvalReport",
    "ImageResult",
    "MetricInfo",
    "Previews",
    "ReportFiles",
    "SODResult",
    "SODScores",
    "Sample",
    "SummaryRow",
    "agreement",
    "collect_images",
    "evaluate_ground_truth",
    "evaluate_reference",
    "sod_result",
    "summarise_agreement",
    "summarise_sod",
    "summary_rows",
    "write_report",
]
