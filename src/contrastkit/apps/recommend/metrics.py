"""Full-ranking metrics of leave-last-out evaluation.

Every evaluated user has one held-out item. All catalogue items are scored, the items the
user already has (training history, and the validation item when testing) are left out, and
the held-out item's rank r (0 = first) gives

    HR@10 = [r < 10]    NDCG@10 = [r < 10] / log2(r + 2)    Recall@20 = [r < 20]
    MRR = 1 / (r + 1)

averaged over users (with one relevant item, Recall@k is HR@k). Ties are broken at random
(seeded): an item tied with t others takes each of the t + 1 places with equal chance, so a
constant scorer earns what chance earns. Coverage@10 is the share of the catalogue that is in
at least one user's top 10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from contrastkit.errors import UserError

TOP_K = 10
RECALL_K = 20
COLD_MAX_INTERACTIONS = 5  # a held-out item with at most this many training interactions is cold
ACTIVITY_EDGES = (0, 20, 50, 100, 200)  # users' training interactions: <=20, 21-50, ...
CHUNK_USERS = 512

Scorer = Callable[[np.ndarray], np.ndarray]  # users -> (len(users), n_items) scores


@dataclass
class Ranking:
    """Where each evaluated user's held-out item ranked, and each user's top 10."""

    ranks: np.ndarray  # int64, 0-based
    top: np.ndarray  # (users, TOP_K) item rows, best first


def rank_held_out(
    score: Scorer,
    users: np.ndarray,
    targets: np.ndarray,
    exclude: sp.csr_matrix,
    seed: int = 0,
    chunk: int = CHUNK_USERS,
) -> Ranking:
    """Rank every user's held-out item among all items, leaving out the items in the user's
    row of `exclude` (the held-out item itself is never left out)."""
    rng = np.random.default_rng(seed)
    ranks, tops = [], []
    for start in range(0, len(users), chunk):
        rows = np.arange(start, min(start + chunk, len(users)))
        scores = np.array(score(users[rows]), dtype=np.float64)
        if not np.isfinite(scores).all():
            raise UserError(
                "the model gave non-finite scores, so it cannot be evaluated; train it again "
                "with a lower learning rate"
            )
        local = np.arange(len(rows))
        target_scores = scores[local, targets[rows]]
        seen = exclude[users[rows]].tocoo()
        scores[seen.row, seen.col] = -np.inf
        scores[local, targets[rows]] = target_scores  # the held-out item is always ranked
        greater = (scores > target_scores[:, None]).sum(axis=1)
        ties = (scores == target_scores[:, None]).sum(axis=1) - 1
        ranks.append(greater + rng.integers(0, ties + 1))
        tops.append(top_items(scores, TOP_K))
    empty = np.zeros((0, TOP_K), dtype=np.int64)
    return Ranking(
        np.concatenate(ranks) if ranks else np.zeros(0, np.int64),
        np.concatenate(tops) if tops else empty,
    )


def top_items(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best columns of each row, best first (k is capped at the number of columns)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    """HR@10, NDCG@10, Recall@20 and MRR of 0-based ranks (NaN-free: empty -> None values)."""
    if len(ranks) == 0:
        return {"hr@10": None, "ndcg@10": None, "recall@20": None, "mrr": None, "users": 0}
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < TOP_K
    return {
        "hr@10": float(hit.mean()),
        "ndcg@10": float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()),
        "recall@20": float((ranks < RECALL_K).mean()),
        "mrr": float((1.0 / (ranks + 1.0)).mean()),
        "users": len(ranks),
    }


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    return float(len(np.unique(top)) / n_items) if n_items else 0.0


def summarise(ranking: Ranking, n_items: int, cold: np.ndarray) -> dict:
    """All metrics, plus the same on the users whose held-out item is cold (`cold` mask)."""
    metrics = ranking_metrics(ranking.ranks)
    metrics["coverage@10"] = coverage(ranking.top, n_items)
    metrics["cold"] = ranking_metrics(ranking.ranks[cold])
    return metrics


def ndcg_by_activity(ranks: np.ndarray, activity: np.ndarray) -> list[dict]:
    """NDCG@10 per group of users by their number of training interactions."""
    groups = []
    edges = [*ACTIVITY_EDGES, np.inf]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        members = (activity > low) & (activity <= high)
        if not members.any():
            continue
        label = f"{int(low) + 1}-{int(high)}" if np.isfinite(high) else f">{int(low)}"
        groups.append({**ranking_metrics(ranks[members]), "group": label, "n": int(members.sum())})
    return groups
