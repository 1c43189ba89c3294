"""The two-tower model and every baseline, measured on the same leave-last-out split.

Validation: history = training interactions, the validation item held out. Test: history =
training interactions plus the validation item (the user had it before the test item), the
test item held out. Every model is fit on the training interactions only; models that read a
history (two-tower, item-kNN, content-only) read the one above, BPR has only its user factors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from contrastkit.apps.recommend import baselines
from contrastkit.apps.recommend.data import Interactions
from contrastkit.apps.recommend.metrics import (
    COLD_MAX_INTERACTIONS,
    Ranking,
    rank_held_out,
    summarise,
)
from contrastkit.apps.recommend.scoring import TowerScorer
from contrastkit.apps.recommend.split import Split, add_rows, item_counts, user_item_matrix

MODEL = "two-tower"


@dataclass
class Protocol:
    """The split as matrices and arrays: who is evaluated, on what, with what history."""

    train: sp.csr_matrix
    test_history: sp.csr_matrix
    users: np.ndarray
    validation_items: np.ndarray
    test_items: np.ndarray
    counts: np.ndarray  # training interactions per item
    seed: int

    @classmethod
    def of(cls, data: Interactions, split: Split, seed: int) -> Protocol:
        train = user_item_matrix(data, split.train)
        return cls(
            train,
            add_rows(train, data, split.validation),
            data.users[split.test],
            data.items[split.validation],
            data.items[split.test],
            item_counts(data, split.train),
            seed,
        )

    def validation(self, score: Callable) -> tuple[dict, Ranking]:
        ranking = rank_held_out(score, self.users, self.validation_items, self.train, self.seed)
        cold = self.counts[self.validation_items] <= COLD_MAX_INTERACTIONS
        return summarise(ranking, self.train.shape[1], cold), ranking

    def test(self, score: Callable) -> tuple[dict, Ranking]:
        ranking = rank_held_out(score, self.users, self.test_items, self.test_history, self.seed)
        cold = self.counts[self.test_items] <= COLD_MAX_INTERACTIONS
        return summarise(ranking, self.train.shape[1], cold), ranking

    def activity(self) -> np.ndarray:
        """Training interactions of each evaluated user."""
        return np.diff(self.train.indptr)[self.users]


@dataclass
class Evaluation:
    metrics: dict = field(
        default_factory=dict
    )  # model -> {"validation": ..., "test": ..., "fit_s"}
    rankings: dict = field(default_factory=dict)  # model -> test Ranking
    notes: list[str] = field(default_factory=list)


def validation_ndcg(protocol: Protocol) -> Callable:
    """The score training keeps the best epoch by: NDCG@10 on the validation items."""

    def score(rec) -> float:
        return protocol.validation(TowerScorer(rec.model_, protocol.train))[0]["ndcg@10"]

    return score


def evaluate_all(
    rec, protocol: Protocol, features: np.ndarray | None, with_baselines: bool = True
) -> Evaluation:
    """Metrics of the trained recommender and of each baseline, on validation and test."""
    result = Evaluation()
    _measure(
        result,
        MODEL,
        TowerScorer(rec.model_, protocol.train),
        TowerScorer(rec.model_, protocol.test_history),
        protocol,
    )
    if not with_baselines:
        return result
    builders: list[tuple[str, Callable]] = [
        (baselines.MostPopular.name, lambda: baselines.MostPopular(protocol.train)),
        (baselines.ItemKNN.name, lambda: baselines.ItemKNN(protocol.train)),
    ]
    if baselines.bpr_available():
        builders.append((baselines.BPR.name, lambda: baselines.BPR(protocol.train, protocol.seed)))
    else:
        result.notes.append(
            "the BPR baseline was skipped: it needs pip install 'contrastkit[recommend]'"
        )
    if features is not None:
        builders.append((baselines.ContentOnly.name, lambda: baselines.ContentOnly(features)))
    for name, build in builders:
        tick = time.perf_counter()
        model = build()
        fit_s = time.perf_counter() - tick
        _measure(
            result,
            name,
            lambda users, m=model: m.scores(users, protocol.train),
            lambda users, m=model: m.scores(users, protocol.test_history),
            protocol,
        )
        result.metrics[name]["fit_s"] = fit_s
    return result


def _measure(result: Evaluation, name: str, on_train, on_test, protocol: Protocol) -> None:
    validation, _ = protocol.validation(on_train)
    test, ranking = protocol.test(on_test)
    result.metrics[name] = {"validation": validation, "test": test}
    result.rankings[name] = ranking
