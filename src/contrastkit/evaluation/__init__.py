"""Evaluation, before vs after: kNN, linear probe, retrieval, clustering, geometry, HTML report.

``write_report`` is imported on first use, so ``evaluate`` does not pull in matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metrics import (
    LOWER_IS_BETTER,
    METRIC_KEYS,
    Metrics,
    confusion_pairs,
    evaluate,
    per_class_accuracy,
)
from .neighbours import knn_predict, knn_predict_loo, knn_predict_many, knn_score

if TYPE_CHECKING:
    from .report import write_report

__all__ = [
    "Metrics",
    "LOWER_IS_BETTER",
    "METRIC_KEYS",
    "confusion_pairs",
    "evaluate",
    "knn_predict",
    "knn_predict_loo",
    "knn_predict_many",
    "knn_score",
    "per_class_accuracy",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from .report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
