"""The recommendation report's figures, drawn with the refine report's style and helpers;
each returned as base64 PNG text."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter

from contrastkit.evaluation import plots

MAP_POINTS = 800  # t-SNE of more items adds seconds (14 s for 1200 on one thread), not insight


def ndcg_by_activity(groups: dict[str, list[dict]]) -> str | None:
    """Grouped bars: NDCG@10 of each model (key) per user-activity group."""
    labels = [g["group"] for g in next(iter(groups.values()), [])]
    if not labels:
        return None
    width = 0.8 / len(groups)
    colours = plots.class_colours(len(groups))
    with plots.report_style():
        fig, ax = plots.new_figure(figsize=(9.5, 3.6))
        x = np.arange(len(labels))
        for i, (name, rows) in enumerate(groups.items()):
            values = [r["ndcg@10"] or 0.0 for r in rows]
            ax.bar(x + (i - (len(groups) - 1) / 2) * width, values, width, label=name,
                   color=colours[i])  # fmt: skip
        counts = [g["n"] for g in next(iter(groups.values()))]
        ax.set_xticks(x, [f"{lab}\n({n} users)" for lab, n in zip(labels, counts, strict=True)])
        ax.set_xlabel("user's training interactions")
        ax.set_ylabel("NDCG@10 (test)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, frameon=False, ncol=min(len(groups), 3))
        fig.tight_layout()
        return plots.to_png_base64(fig)


def popularity_of_recommendations(tops: dict[str, np.ndarray], counts: np.ndarray) -> str:
    """Cumulative share of recommended items (every top-10 slot) by the item's number of
    training interactions, against the catalogue's own items."""
    colours = plots.class_colours(len(tops))
    with plots.report_style():
        fig, ax = plots.new_figure(figsize=(7.5, 3.8))
        curves = [("catalogue", counts, "#111827", "--")]
        curves += [
            (n, counts[top.ravel()], colours[i], "-") for i, (n, top) in enumerate(tops.items())
        ]
        for name, values, colour, style in curves:
            xs = np.sort(values + 1.0)
            ax.plot(
                xs, np.arange(1, len(xs) + 1) / len(xs), style, color=colour, lw=1.6, label=name
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlabel("item's training interactions + 1 (log scale)")
        ax.set_ylabel("cumulative share")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        return plots.to_png_base64(fig)


def item_map(
    before: np.ndarray,
    after: np.ndarray,
    genres: list[str] | None,
    seed: int,
    titles: tuple[str, str] = ("frozen item features", "two-tower item vectors"),
) -> tuple[str, int]:
    """Two t-SNE maps of the items coloured by genre (picture, number of items shown)."""
    names = sorted(set(genres)) if genres else ["item"]
    code_of = {name: i for i, name in enumerate(names)}
    codes = np.array([code_of[g] for g in genres] if genres else [0] * len(after), dtype=np.int64)
    rows = plots.map_subsample(codes, seed, MAP_POINTS)
    maps = [plots.tsne_2d(x[rows], seed) for x in (before, after)]
    return plots.embedding_maps(*maps, codes[rows], names, titles), len(rows)
