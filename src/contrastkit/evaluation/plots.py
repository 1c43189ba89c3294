"""Figures of the before/after report, each returned as a base64-encoded PNG.

Figures are built as plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas,
never through pyplot, so importing or using this module leaves the user's backend alone.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

BEFORE_COLOUR = "#8c96a8"
AFTER_COLOUR = "#2563eb"
SAME_COLOUR = "#16a34a"
DIFF_COLOUR = "#dc2626"
GAIN_COLOUR = "#16a34a"
LOSS_COLOUR = "#dc2626"
MAP_MAX_POINTS = 1500
LEGEND_MAX_CLASSES = 20
TSNE_MIN_ROWS = 10
_STYLE = {
    "text.parse_math": False,  # class names may hold "$"; never read them as TeX
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.titlesize": 11,
    "figure.dpi": 100,
}


def to_png_base64(fig: Figure) -> str:
    """Render ``fig`` to PNG and return the bytes as base64 text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """Like pyplot.subplots, without pyplot: a Figure with an Agg canvas and its axes."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def training_curves(history: Sequence[dict]) -> str | None:
    """Loss, learning rate and any other numeric series of ``history`` against step or epoch."""
    if not history:
        return None
    x_key = "step" if any("step" in row for row in history) else "epoch"
    series: dict[str, list[tuple[float, float]]] = {}
    for i, row in enumerate(history):
        x = row.get(x_key, i + 1)
        for key, value in row.items():
            if key in ("step", "epoch") or not _is_number(value) or not _is_number(x):
                continue
            series.setdefault(key, []).append((float(x), float(value)))
    # counters that stayed at zero (e.g. skipped_steps of a healthy run) are not worth a panel
    series = {
        key: points
        for key, points in series.items()
        if not (key.endswith(("_steps", "_count")) and all(v == 0 for _, v in points))
    }
    if not series:
        return None
    groups = _group_series(series)
    with matplotlib.rc_context(_STYLE):
        fig, axes = _subplots(1, len(groups), figsize=(4.2 * len(groups), 3.0), squeeze=False)
        for ax, (title, keys) in zip(axes[0], groups.items(), strict=True):
            for key in keys:
                xs, ys = zip(*series[key], strict=True)
                ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, ms=3, lw=1.6, label=key)
            ax.set_title(title)
            ax.set_xlabel(x_key)
            ax.grid(alpha=0.3)
            if title == "learning rate":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            if len(keys) > 1 or title == "validation":
                ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        return to_png_base64(fig)


def _group_series(series: dict[str, list]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in series:
        if "loss" in key:
            title = "loss"
        elif key in ("lr", "learning_rate") or key.startswith("lr_"):
            title = "learning rate"
        elif key.startswith(("val", "valid", "eval", "test")):
            title = "validation"
        else:
            title = key
        groups.setdefault(title, []).append(key)
    return groups


def map_subsample(labels: np.ndarray, seed: int, max_points: int = MAP_MAX_POINTS) -> np.ndarray:
    """Sorted row indices of a seeded subsample of at most ``max_points`` rows, every class kept
    in proportion (stratified), so small classes still show on the maps."""
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = max(1, round(len(rows) * max_points / n))
        chosen.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    picked = np.concatenate(chosen)
    if len(picked) > max_points:
        picked = rng.choice(picked, size=max_points, replace=False)
    return np.sort(picked)


def tsne_2d(Z_unit: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE (PCA init) of unit rows, after a PCA to at most 50 dims for speed."""
    X = Z_unit.astype(np.float32)
    if X.shape[1] < 2:  # one-dimensional rows: a zero second axis, so the map is a line
        X = np.hstack([X, np.zeros_like(X)])
    if len(X) < TSNE_MIN_ROWS:  # too few rows for t-SNE: plain coordinates, centred
        coords = np.zeros((len(X), 2), dtype=np.float32)
        coords[:, : min(2, X.shape[1])] = X[:, :2] - X[:, :2].mean(axis=0)
        return coords
    n_comp = min(50, X.shape[1], len(X))
    if X.shape[1] > n_comp:
        X = PCA(n_components=n_comp, random_state=seed).fit_transform(X)
    perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3.0)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        max_iter=500,
        random_state=seed,
    )
    return tsne.fit_transform(X)


def class_colours(n_classes: int) -> np.ndarray:
    """Distinct RGBA colours: tab10/tab20 for few classes, evenly spaced hues beyond 20."""
    if n_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n_classes))
    if n_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(n_classes))
    # Golden-ratio hue steps keep neighbouring class indices apart in colour.
    hues = (np.arange(n_classes) * 0.618033988749895) % 1.0
    cmap = matplotlib.colormaps["hsv"]
    colours = cmap(hues)
    colours[1::2, :3] *= 0.7  # alternate darker shades for more contrast
    return colours


def embedding_maps(
    points_before: np.ndarray,
    points_after: np.ndarray,
    label_codes: np.ndarray,
    class_names: Sequence[str],
    titles: tuple[str, str] = ("before", "after"),
) -> str:
    """Side-by-side scatter plots of 2-D maps before and after, coloured by class."""
    colours = class_colours(len(class_names))
    with matplotlib.rc_context(_STYLE):
        fig, axes = _subplots(1, 2, figsize=(12, 5.6))
        for ax, points, title in zip(axes, (points_before, points_after), titles, strict=True):
            ax.scatter(
                points[:, 0],
                points[:, 1],
                c=colours[label_codes],
                s=9,
                alpha=0.85,
                linewidths=0,
            )
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ("left", "bottom"):
                ax.spines[side].set_visible(False)
        if len(class_names) <= LEGEND_MAX_CLASSES:
            handles = [
                Line2D([], [], ls="", marker="o", ms=6, color=colours[i], label=name)
                for i, name in enumerate(class_names)
            ]
            fig.legend(
                handles=handles,
                loc="lower center",
                ncol=min(len(class_names), 5),
                frameon=False,
                fontsize=9,
            )
            fig.tight_layout(rect=(0, 0.06 * math.ceil(len(class_names) / 5), 1, 1))
        else:
            fig.tight_layout()
        return to_png_base64(fig)


def sample_pair_similarities(
    Z_unit: np.ndarray, label_codes: np.ndarray, seed: int, n_pairs: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of seeded random same-class and different-class pairs (i != j).

    Same-class pairs are drawn within classes (a random row, then a random other row of its
    class), so they are found even when classes are many and small.
    """
    rng = np.random.default_rng(seed)
    n = len(Z_unit)
    i = rng.integers(0, n, size=n_pairs)
    j = rng.integers(0, n, size=n_pairs)
    keep = (i != j) & (label_codes[i] != label_codes[j])
    different = np.einsum("nd,nd->n", Z_unit[i[keep]], Z_unit[j[keep]])

    order = np.argsort(label_codes, kind="stable")
    sizes = np.bincount(label_codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    anchors = rng.integers(0, n, size=n_pairs)
    anchors = anchors[sizes[label_codes[anchors]] > 1]
    code = label_codes[anchors]
    offset = rng.integers(0, sizes[code] - 1) if len(anchors) else np.array([], dtype=int)
    partners = order[starts[code] + offset]
    partners = np.where(partners == anchors, order[starts[code] + sizes[code] - 1], partners)
    same = np.einsum("nd,nd->n", Z_unit[anchors], Z_unit[partners])
    return same, different


def similarity_histograms(
    pairs_before: tuple[np.ndarray, np.ndarray], pairs_after: tuple[np.ndarray, np.ndarray]
) -> str:
    """Histograms of same-class vs different-class cosine similarity, before and after."""
    with matplotlib.rc_context(_STYLE):
        fig, axes = _subplots(1, 2, figsize=(12, 3.4), sharey=False)
        bins = np.linspace(-1, 1, 81)
        for ax, (same, different), title in zip(
            axes, (pairs_before, pairs_after), ("before", "after"), strict=True
        ):
            ax.hist(
                different,
                bins=bins,
                density=True,
                alpha=0.55,
                color=DIFF_COLOUR,
                label="different class",
            )
            ax.hist(
                same, bins=bins, density=True, alpha=0.55, color=SAME_COLOUR, label="same class"
            )
            gap = (same.mean() - different.mean()) if len(same) and len(different) else np.nan
            ax.set_title(f"{title}  (mean gap {gap:.2f})")
            ax.set_xlabel("cosine similarity")
            ax.set_yticks([])
            ax.legend(frameon=False, fontsize=8, loc="upper left")
        fig.tight_layout()
        return to_png_base64(fig)


def per_class_changes(
    names: Sequence[str], before: np.ndarray, after: np.ndarray, cap: int = 30
) -> str:
    """Horizontal bars of after - before accuracy per class, biggest gains and losses first.

    At most ``cap`` classes are drawn: the largest gains and the largest losses, half each
    (unused slots go to the other side).
    """
    delta = (np.asarray(after) - np.asarray(before)) * 100
    order = np.argsort(-delta, kind="stable")
    gains = [i for i in order if delta[i] > 0]
    losses = [i for i in order[::-1] if delta[i] < 0]
    n_loss = min(len(losses), max(cap // 2, cap - len(gains)))
    n_gain = min(len(gains), cap - n_loss)
    shown = gains[:n_gain] + losses[:n_loss][::-1]
    if not shown:
        shown = list(order[: min(cap, len(order))])
    with matplotlib.rc_context(_STYLE):
        height = max(1.6, 0.27 * len(shown) + 0.8)
        fig, ax = _subplots(figsize=(9, height))
        values = delta[shown]
        colours = [
            GAIN_COLOUR if v > 0 else LOSS_COLOUR if v < 0 else BEFORE_COLOUR for v in values
        ]
        y = np.arange(len(shown))[::-1]
        ax.barh(y, values, color=colours, height=0.7)
        ax.set_yticks(y)
        ax.set_yticklabels([_shorten(str(names[i]), 42) for i in shown], fontsize=8)
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.axvline(0, color="#334155", lw=0.8)
        ax.set_xlabel("accuracy change (points)")
        ax.grid(axis="x", alpha=0.3)
        low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
        span = max(1.0, high - low)
        ax.set_xlim(low - 0.15 * span, high + 0.15 * span)
        for yi, v in zip(y, values, strict=True):
            ax.text(
                v + (0.02 * span if v >= 0 else -0.02 * span),
                yi,
                f"{v:+.1f}",
                va="center",
                ha="left" if v >= 0 else "right",
                fontsize=7,
            )
        fig.tight_layout()
        return to_png_base64(fig)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """(figure, axes) for another report's figure, drawn in this module's style: use it inside
    `with report_style():` and finish with `to_png_base64(fig)`."""
    return _subplots(nrows, ncols, figsize=figsize, **kwargs)


def report_style():
    """The matplotlib settings of the report's figures, as a context manager."""
    return matplotlib.rc_context(_STYLE)
