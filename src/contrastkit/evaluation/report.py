"""The before/after HTML report: one self-contained page (inline CSS, PNG figures as base64)."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from . import plots
from ._arrays import check_embeddings, check_labels, l2_normalise
from .metrics import LOWER_IS_BETTER, METRIC_KEYS, confusion_pairs, per_class_accuracy
from .neighbours import knn_predict, knn_predict_loo

METRIC_NAMES = {
    "knn1_accuracy": "kNN accuracy, k=1",
    "knn10_accuracy": "kNN accuracy, k=10",
    "linear_accuracy": "Linear probe accuracy",
    "precision_at_1": "Precision@1 (test vs test)",
    "r_precision": "R-precision",
    "map_at_r": "MAP@R",
    "nmi": "NMI (k-means vs labels)",
    "ami": "AMI (k-means vs labels)",
    "alignment": "Alignment (same-class distance²)",
    "uniformity": "Uniformity (log mean e^(−2d²))",
}
HEADLINE_KEYS = ("knn1_accuracy", "linear_accuracy", "precision_at_1", "map_at_r")
CARD_KEYS = ("knn1_accuracy", "linear_accuracy", "map_at_r", "ami")
CONFUSED_PAIRS_SHOWN = 8
EXAMPLES_PER_DIRECTION = 2
SIMILARITY_PAIRS = 20_000


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
) -> Path:
    """Write the before/after report to ``path`` (an .html file) and return its path.

    ``before``/``after`` are ``evaluate`` results; ``test_before``/``test_after`` the test
    embeddings (their widths may differ) with ``test_labels``. Integer labels are shown as
    ``class_names[label]``; other labels are shown as they are (``class_names`` may then be
    None). With ``train_before``/``train_after``/``train_labels`` per-class accuracy is kNN-1
    against the train rows, otherwise leave-one-out kNN-1 within the test set. ``examples``
    (the test texts) adds example rows to the confused pairs. Every user string is escaped;
    the page has no external references.
    """
    # One BLAS/OpenMP thread: t-SNE and k-means on a few thousand rows run several times
    # slower with oversubscribed thread pools on small, shared machines (measured 4x).
    with threadpool_limits(limits=1):
        return _write_report(
            path,
            before=before,
            after=after,
            test_before=test_before,
            test_after=test_after,
            test_labels=test_labels,
            class_names=class_names,
            history=history,
            train_before=train_before,
            train_after=train_after,
            train_labels=train_labels,
            examples=examples,
            config=config,
            timing=timing,
            title=title,
            seed=seed,
        )


def _write_report(
    path,
    *,
    before,
    after,
    test_before,
    test_after,
    test_labels,
    class_names,
    history,
    train_before,
    train_after,
    train_labels,
    examples,
    config,
    timing,
    title,
    seed,
) -> Path:
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
    predicted_before, predicted_after, how = _knn1_predictions(
        test_before, test_after, labels, train
    )

    names = sorted(set(labels.tolist()))
    code_of = {name: i for i, name in enumerate(names)}
    codes = np.array([code_of[name] for name in labels.tolist()], dtype=np.int64)
    sections = [
        _headline(title, before, after, labels, test_before, test_after, config),
        _metrics_table(before, after),
        _curves_section(history),
        _maps_section(test_before, test_after, labels, codes, names, seed),
        _similarity_section(test_before, test_after, codes, seed),
        _per_class_section(labels, predicted_before, predicted_after, how),
        _confusion_section(labels, predicted_before, predicted_after, examples, how),
        _side_by_side(
            _table_section("Configuration", _flatten(config or {}), "config"),
            _table_section("Timing", _timing_rows(timing or {}), "timing"),
        ),
    ]
    footer = (
        f"<footer>Generated by contrastkit {html.escape(_version())} on "
        f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} in "
        f"{time.perf_counter() - started:.1f} s.</footer>"
    )
    page = _page(title, "\n".join(s for s in sections if s) + footer)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


# ---------------------------------------------------------------- inputs


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


# ---------------------------------------------------------------- formatting


def _is_percent(key: str) -> bool:
    return key.endswith("_accuracy")


def _fmt(key: str, value: Any) -> str:
    if not _finite(value):
        return "n/a"
    return f"{100 * value:.2f} %" if _is_percent(key) else f"{value:.4f}"


def _fmt_delta(key: str, delta: float) -> str:
    if not _finite(delta):
        return "n/a"
    return f"{100 * delta:+.2f} pts" if _is_percent(key) else f"{delta:+.4f}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def _direction(key: str, delta: float) -> str:
    """CSS class of a change: good, bad or same, with lower-is-better metrics reversed."""
    if not _finite(delta) or abs(delta) < 1e-12:
        return "same"
    better = delta < 0 if key in LOWER_IS_BETTER else delta > 0
    return "good" if better else "bad"


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _version() -> str:
    try:
        return metadata.version("contrastkit")
    except metadata.PackageNotFoundError:
        return "(development)"


# ---------------------------------------------------------------- sections


def _headline(title, before, after, labels, test_before, test_after, config) -> str:
    config = config or {}
    what = []
    for key, prefix in (("method", "method"), ("model", "model"), ("mode", "mode")):
        if config.get(key) not in (None, ""):
            what.append(f"{prefix} <b>{html.escape(str(config[key]))}</b>")
    data = config.get("train") or config.get("data") or config.get("dataset")
    if data:
        what.append(f"data <b>{html.escape(str(data))}</b>")
    n_classes = len(set(labels.tolist()))
    facts = (
        f"Test set: {len(labels):,} rows, {n_classes:,} classes; embeddings "
        f"{test_before.shape[1]} → {test_after.shape[1]} dims."
    )
    gain = ""
    for key in HEADLINE_KEYS:
        b, a = before.get(key), after.get(key)
        if _finite(b) and _finite(a):
            delta = a - b
            unit = " points" if _is_percent(key) else ""
            scale = 100 if _is_percent(key) else 1
            digits = 2 if _is_percent(key) else 3
            pct = " %" if _is_percent(key) else ""
            gain = (
                f'<p class="gain {_direction(key, delta)}">{html.escape(METRIC_NAMES[key])}: '
                f"{scale * b:.{digits}f}{pct} → <b>{scale * a:.{digits}f}{pct}</b> "
                f"<span>({scale * delta:+.{digits}f}{unit})</span></p>"
            )
            break
    cards = []
    for key in CARD_KEYS:
        b, a = before.get(key), after.get(key)
        if not (_finite(b) and _finite(a)):
            continue
        cards.append(
            f'<div class="card"><div class="label">{html.escape(METRIC_NAMES[key])}</div>'
            f'<div class="value">{_fmt(key, a)}</div>'
            f'<div class="delta {_direction(key, a - b)}">{_fmt_delta(key, a - b)} '
            f'<span class="muted">from {_fmt(key, b)}</span></div></div>'
        )
    subtitle = ("Refined with " + ", ".join(what) + ". ") if what else ""
    return (
        f"<header><h1>{html.escape(title)}</h1>"
        f'<p class="sub">{subtitle}{html.escape(facts)}</p>{gain}'
        f'<div class="cards">{"".join(cards)}</div></header>'
    )


def _metrics_table(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    keys = [k for k in METRIC_KEYS if k in before or k in after]
    keys += sorted(k for k in {*before, *after} if k not in METRIC_KEYS)
    rows = []
    for key in keys:
        b, a = before.get(key), after.get(key)
        delta = a - b if _finite(a) and _finite(b) else float("nan")
        arrow = "↓ lower is better" if key in LOWER_IS_BETTER else "↑ higher is better"
        rows.append(
            f"<tr><td>{html.escape(METRIC_NAMES.get(key, key))}"
            f'<div class="key">{html.escape(key)}</div></td>'
            f'<td class="num">{_fmt(key, b)}</td><td class="num">{_fmt(key, a)}</td>'
            f'<td class="num {_direction(key, delta)}">{_fmt_delta(key, delta)}</td>'
            f'<td class="muted">{arrow}</td></tr>'
        )
    return (
        '<section><h2>Metrics, before and after</h2><table class="metrics"><thead><tr>'
        "<th>metric</th><th>before</th><th>after</th><th>change</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<p class="note">kNN and linear probe: test rows against the train rows. Retrieval '
        "(Precision@1, R-precision, MAP@R) and clustering (NMI, AMI): the test set against "
        "itself. Alignment and uniformity (Wang &amp; Isola 2020) on unit-length test rows.</p>"
        "</section>"
    )


def _curves_section(history) -> str:
    if not history:
        return ""
    picture = plots.training_curves(list(history))
    if not picture:
        return ""
    return (
        "<section><h2>Training</h2>"
        f"{_img(picture, 'training curves')}"
        f'<p class="note">{len(history)} logged rows.</p></section>'
    )


def _maps_section(test_before, test_after, labels, codes, names, seed) -> str:
    rows = plots.map_subsample(codes, seed)
    before_2d = plots.tsne_2d(test_before[rows], seed)
    after_2d = plots.tsne_2d(test_after[rows], seed)
    picture = plots.embedding_maps(before_2d, after_2d, codes[rows], names)
    shown = (
        f"all {len(rows):,} test rows"
        if len(rows) == len(labels)
        else (f"{len(rows):,} of {len(labels):,} test rows (a fixed sample stratified by class)")
    )
    legend = (
        ""
        if len(names) <= plots.LEGEND_MAX_CLASSES
        else (
            f" {len(names)} classes, one colour each (no legend above "
            f"{plots.LEGEND_MAX_CLASSES} classes)."
        )
    )
    return (
        "<section><h2>Map of the test embeddings</h2>"
        f"{_img(picture, 't-SNE maps before and after')}"
        f'<p class="note">t-SNE (PCA init) of {shown}, coloured by class.{legend} Tighter, '
        "better separated islands after refinement mean classes are easier to tell apart. "
        "Distances between islands on a t-SNE map mean little.</p></section>"
    )


def _similarity_section(test_before, test_after, codes, seed) -> str:
    pairs_before = plots.sample_pair_similarities(test_before, codes, seed, SIMILARITY_PAIRS)
    pairs_after = plots.sample_pair_similarities(test_after, codes, seed, SIMILARITY_PAIRS)
    if not len(pairs_before[0]) or not len(pairs_before[1]):
        return ""
    picture = plots.similarity_histograms(pairs_before, pairs_after)
    return (
        "<section><h2>Cosine similarity of same-class and different-class pairs</h2>"
        f"{_img(picture, 'similarity histograms before and after')}"
        '<p class="note">Random test pairs. The less the two histograms overlap, the better a '
        "single similarity threshold separates same-class from different-class pairs.</p>"
        "</section>"
    )


def _per_class_section(labels, predicted_before, predicted_after, how) -> str:
    acc_before = per_class_accuracy(labels, predicted_before)
    acc_after = per_class_accuracy(labels, predicted_after)
    names = list(acc_before)
    b = np.array([acc_before[n] for n in names])
    a = np.array([acc_after[n] for n in names])
    better, worse = int((a > b).sum()), int((a < b).sum())
    same = len(names) - better - worse
    picture = plots.per_class_changes(names, b, a)
    shown = "" if better + worse <= 30 else " (the 30 largest changes)"
    return (
        "<section><h2>Per-class accuracy change</h2>"
        f'<p><span class="{"good" if better else "same"}">{better} classes improved</span>, '
        f'<span class="{"bad" if worse else "same"}">{worse} got worse</span>, '
        f"{same} unchanged{shown}.</p>"
        f"{_img(picture, 'per-class accuracy change')}"
        f'<p class="note">Accuracy per true class of {html.escape(how)}.</p></section>'
    )


def _confusion_section(labels, predicted_before, predicted_after, examples, how) -> str:
    pairs = confusion_pairs(labels, predicted_after, top=CONFUSED_PAIRS_SHOWN)
    if not pairs:
        return (
            "<section><h2>Most confused classes after refinement</h2>"
            "<p>No test row is mistaken for another class.</p></section>"
        )
    before_counts = {
        (p["a"], p["b"]): p["total"] for p in confusion_pairs(labels, predicted_before, top=10**9)
    }
    rows = []
    for pair in pairs:
        a, b = pair["a"], pair["b"]
        cells = (
            f"<td>{html.escape(a)}</td><td>{html.escape(b)}</td>"
            f'<td class="num">{pair["a_as_b"]}</td><td class="num">{pair["b_as_a"]}</td>'
            f'<td class="num"><b>{pair["total"]}</b></td>'
            f'<td class="num muted">{before_counts.get((a, b), 0)}</td>'
        )
        rows.append(f"<tr>{cells}</tr>")
        if examples is not None:
            rows.append(
                f'<tr class="examples"><td colspan="6">'
                f"{_pair_examples(labels, predicted_after, examples, a, b)}</td></tr>"
            )
    return (
        "<section><h2>Most confused classes after refinement</h2>"
        '<table class="pairs"><thead><tr><th>class A</th><th>class B</th>'
        "<th>A taken for B</th><th>B taken for A</th><th>total</th><th>total before</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="note">Mistakes of {html.escape(how)}.</p></section>'
    )


def _pair_examples(labels, predicted, examples, a, b) -> str:
    items = []
    for true, wrong in ((a, b), (b, a)):
        rows = np.flatnonzero((labels == true) & (predicted == wrong))[:EXAMPLES_PER_DIRECTION]
        for row in rows:
            items.append(
                f"<li>“{html.escape(str(examples[row]))}” "
                f'<span class="muted">is {html.escape(true)}, taken for '
                f"{html.escape(wrong)}</span></li>"
            )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            rows.append((name, json.dumps(list(value), default=str)))
        else:
            rows.append((name, str(value)))
    return rows


def _timing_rows(timing: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in timing.items():
        name = str(key).removesuffix("_s").removesuffix("_seconds").replace("_", " ")
        if _finite(value):
            rows.append((name, f"{float(value):,.1f} s" if value >= 1 else f"{value:.3f} s"))
        else:
            rows.append((name, str(value)))
    return rows


def _table_section(heading: str, rows: list[tuple[str, str]], css: str) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<section><h2>{heading}</h2><table class="{css}">{body}</table></section>'


def _side_by_side(*sections: str) -> str:
    present = [s for s in sections if s]
    return f'<div class="row">{"".join(present)}</div>' if present else ""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6fa;color:#1e293b;
 font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 40px}
header{background:linear-gradient(135deg,#1e3a8a,#2563eb);color:#fff;border-radius:14px;
 padding:26px 30px 22px;margin-bottom:22px}
header h1{margin:0 0 6px;font-size:26px;font-weight:700}
header .sub{margin:0 0 12px;opacity:.9}
header .gain{font-size:22px;margin:6px 0 16px}
header .gain span{font-weight:700}
header .gain,header .gain b{color:#fff;font-weight:400}header .gain b{font-weight:700}
header .gain.good span{color:#bbf7d0}header .gain.bad span{color:#fecaca}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{background:rgba(255,255,255,.12);border-radius:10px;padding:10px 16px;min-width:200px;flex:1}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;opacity:.85}
.card .value{font-size:26px;font-weight:700}
.card .delta.good{color:#bbf7d0}.card .delta.bad{color:#fecaca}.card .muted{color:#dbeafe}
section{background:#fff;border-radius:12px;padding:18px 24px;margin-bottom:18px;
 box-shadow:0 1px 3px rgba(15,23,42,.08)}
.row{display:flex;gap:18px;align-items:flex-start}
.row section{flex:1;min-width:0}
h2{font-size:18px;margin:0 0 12px;color:#1e3a8a}
img{max-width:100%;display:block;margin:0 auto}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
thead th{font-size:12px;text-transform:uppercase;color:#64748b;letter-spacing:.04em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.key{font:11px ui-monospace,Menlo,Consolas,monospace;color:#94a3b8}
.good{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}
.same{color:#64748b}.muted{color:#64748b;font-size:13px}
.note{color:#64748b;font-size:13px;margin:10px 0 0}
tr.examples td{border-bottom:1px solid #e2e8f0;padding-top:0}
tr.examples ul{margin:0;padding-left:20px;font-size:13px}
table.config th,table.timing th{font-weight:600;width:40%;word-break:break-all}
table.config td,table.timing td{word-break:break-word}
footer{color:#94a3b8;font-size:12px;text-align:center;margin-top:8px}
@media (max-width:800px){.row{display:block}}
"""
