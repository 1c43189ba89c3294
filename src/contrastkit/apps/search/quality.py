"""Search quality against labels: a corpus row is relevant to a query when they share a label
(e.g. the same Banking77 intent).

For a query q with ranked hits h_1..h_k and rel_i = 1 when h_i is relevant:

- recall_at_k  = mean over queries of [some rel_i = 1 for i <= k] (the hit rate: with many
                 relevant rows a query, the share of them found in k hits says little)
- precision_at_k = mean of (1/k) sum_{i<=k} rel_i
- mrr_at_k     = mean of 1 / (first i with rel_i = 1), 0 when none within k
- ndcg_at_k    = mean of DCG / IDCG, DCG = sum_{i<=k} rel_i / log2(i + 1), IDCG the DCG of
                 min(k, relevant rows of q) relevant hits

Queries with no relevant row in the corpus are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def search_quality(
    query_labels: Sequence,
    hit_labels: Sequence[Sequence],
    corpus_labels: Sequence,
    ks: Sequence[int] = (1, 10),
) -> dict[str, float]:
    """recall_at_k and precision_at_k for each k in `ks`, and mrr and ndcg at the largest k."""
    counts: dict = {}
    for label in corpus_labels:
        counts[label] = counts.get(label, 0) + 1
    k_max = max(ks)
    rel, n_rel = [], []
    for label, hits in zip(query_labels, hit_labels, strict=True):
        if counts.get(label, 0) == 0:
            continue
        row = np.zeros(k_max)
        row[: min(len(hits), k_max)] = [h == label for h in list(hits)[:k_max]]
        rel.append(row)
        n_rel.append(counts[label])
    if not rel:
        raise ValueError("no query has a relevant row in the corpus")
    R = np.array(rel)
    out = {}
    for k in ks:
        out[f"recall_at_{k}"] = float(R[:, :k].any(axis=1).mean())
        out[f"precision_at_{k}"] = float(R[:, :k].mean())
    ranks = np.arange(1, k_max + 1)
    first = np.where(R.any(axis=1), R.argmax(axis=1) + 1, np.inf)
    out[f"mrr_at_{k_max}"] = float(np.mean(1.0 / first))
    gains = 1.0 / np.log2(ranks + 1)
    ideal = np.array([gains[: min(k_max, n)].sum() for n in n_rel])
    out[f"ndcg_at_{k_max}"] = float(np.mean((R * gains).sum(axis=1) / ideal))
    return out
