"""The MovieLens 100k protocol the benchmark measures on (skipped when the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contrastkit.apps.recommend.evaluate import Protocol
from contrastkit.apps.recommend.inputs import ReadOptions, load_data
from contrastkit.apps.recommend.metrics import COLD_MAX_INTERACTIONS
from contrastkit.apps.recommend.split import leave_last_out

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens-100k"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is not on this machine")


def test_movielens_split_as_the_benchmark_reports_it():
    data, catalogue = load_data(
        DATA / "ratings.csv", DATA / "items.csv", ReadOptions(vector_column=None), use_text=False
    )
    assert (data.n_users, data.n_items, len(data)) == (943, 1682, 100_000)
    assert catalogue.genres[0] == "Animation" and catalogue.titles[0] == "Toy Story (1995)"
    split = leave_last_out(data)
    assert split.evaluated_users == 943 and len(split.train) == 100_000 - 2 * 943
    protocol = Protocol.of(data, split, seed=0)
    cold = protocol.counts[protocol.test_items] <= COLD_MAX_INTERACTIONS
    assert int(cold.sum()) == 16
    # no test item is in its user's training history
    assert not np.asarray(protocol.train[protocol.users, protocol.test_items]).any()
