"""The before/after HTML report: one self-contained page (inline CSS, PNG figures as base64).

`write_report` checks its inputs and computes the kNN-1 predictions the per-class and
confusion sections show; `report_html` turns them into the page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ._arrays import check_embeddings, check_labels, l2_normalise
from .neighbours import knn_predict, knn_predict_loo
from .report_html import ReportPage, render


def write_report(
    path: str | Path,
    *,
    before: Mapping[str, float],
    after: Mapping[str, float],
    test_before: np.ndarray,
    test_after: np.ndarray,
    test_labels: np.ndarray,
    class_names: Sequence[str] | None,
    history: Sequence[Mapping[str, Any]] | None = None,
    train_before: np.ndarray | None = None,
    train_after: np.ndarray | None = None,
    train_labels: np.ndarray | None = None,
    examples: Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    timing: Mapping[str, Any] | None = None,
    title: str = "contrastkit refinement report",
    seed: int = 0,
    check: Mapping[str, Any] | None = None,
) -> Path:
    """Write the before/after report to ``path`` (an .html file) and return its path.

    ``before``/``after`` are ``evaluate`` results; ``test_before``/``test_after`` the test
    embeddings (their widths may differ) with ``test_labels``. Integer labels are shown as
    ``class_names[label]``; other labels are shown as they are (``class_names`` may then be
    None). With ``train_before``/``train_after``/``train_labels`` per-class accuracy is kNN-1
    against the train rows, otherwise leave-one-out kNN-1 within the test set. ``examples``
    (the test texts) adds example rows to the confused pairs. Every user string is escaped;
    the page has no external references. ``check`` (the safety net's verdict of
    ``contrastkit.run.check``) puts its banner at the top.
    """
    started = time.perf_counter()
    test_before = l2_normalise(check_embeddings(test_before, "test_before"), "test_before")
    test_after = l2_normalise(check_embeddings(test_after, "test_after"), "test_after")
    if len(test_before) != len(test_after):
        raise ValueError(
            f"test_before has {len(test_before)} rows but test_after has {len(test_after)}; "
            "pass the same test rows embedded before and after refinement."
        )
    labels = _display_labels(
        check_labels(test_labels, len(test_before), "test_labels", "test_before"), class_names
    )
    if examples is not None and len(examples) != len(labels):
        raise ValueError(
            f"examples has {len(examples)} texts but there are {len(labels)} test rows; "
            "pass one text per test row or None."
        )
    train = _train_parts(train_before, train_after, train_labels, class_names)
    # One BLAS/OpenMP thread: t-SNE and k-means on a few thousand rows run several times
    # slower with oversubscribed thread pools on small, shared machines (measured 4x).
    with threadpool_limits(limits=1):
        predicted_before, predicted_after, how = _knn1_predictions(
            test_before, test_after, labels, train
        )
        page = ReportPage(
            title, before, after, labels, test_before, test_after, predicted_before,
            predicted_after, how, history, examples, config, timing, seed, started, check,
        )  # fmt: skip
        text = render(page)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _display_labels(labels: np.ndarray, class_names: Sequence[str] | None) -> np.ndarray:
    """Label of each row as the text shown on the page."""
    names = list(class_names or [])
    if names and np.issubdtype(labels.dtype, np.integer):
        bad = np.flatnonzero((labels < 0) | (labels >= len(names)))
        if len(bad):
            raise ValueError(
                f"label {labels[bad[0]]} (row {bad[0]}) has no entry in class_names "
                f"({len(names)} names); pass one name per class index."
            )
        return np.array([str(names[v]) for v in labels.tolist()], dtype=object)
    return np.array([str(v) for v in labels.tolist()], dtype=object)


def _train_parts(train_before, train_after, train_labels, class_names):
    given = [x is not None for x in (train_before, train_after, train_labels)]
    if not any(given):
        return None
    if not all(given):
        raise ValueError(
            "train_before, train_after and train_labels go together: pass all three or none."
        )
    tb = check_embeddings(train_before, "train_before")
    ta = check_embeddings(train_after, "train_after")
    if len(tb) != len(ta):
        raise ValueError(
            f"train_before has {len(tb)} rows but train_after has {len(ta)}; "
            "pass the same train rows embedded before and after refinement."
        )
    labels = _display_labels(
        check_labels(train_labels, len(tb), "train_labels", "train_before"), class_names
    )
    return tb, ta, labels


def _knn1_predictions(test_before, test_after, labels, train):
    if train is not None:
        tb, ta, train_labels = train
        for name, tr, te in (("before", tb, test_before), ("after", ta, test_after)):
            if tr.shape[1] != te.shape[1]:
                raise ValueError(
                    f"train_{name} has {tr.shape[1]} dims but test_{name} has "
                    f"{te.shape[1]}; both must come from the same encoder."
                )
        return (
            knn_predict(tb, train_labels, test_before, 1),
            knn_predict(ta, train_labels, test_after, 1),
            "kNN-1 (each test row takes the label of its nearest train row)",
        )
    if len(labels) < 2:
        return labels.copy(), labels.copy(), "no neighbours (one test row)"
    return (
        knn_predict_loo(test_before, labels, 1),
        knn_predict_loo(test_after, labels, 1),
        "leave-one-out kNN-1 (each test row takes the label of its nearest other test row)",
    )
