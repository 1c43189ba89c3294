"""The leave-last-out split: last by time to test, the one before to validation, seeded random
without timestamps, short histories kept for training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from contrastkit.apps.recommend.data import index_interactions, interactions_from_table
from contrastkit.apps.recommend.data import table_from_frame as frame_table
from contrastkit.apps.recommend.split import leave_last_out, user_item_matrix


def _data(frame: pd.DataFrame):
    return index_interactions(interactions_from_table(frame_table(frame, "test frame")))


def _held(data, rows):
    return {(data.user_ids[data.users[r]], data.item_ids[data.items[r]]) for r in rows}


def test_last_by_time_is_test_and_the_one_before_is_validation():
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "b", "c", "c"],
            "item": ["1", "2", "3", "4", "1", "2", "3", "1", "2"],
            "timestamp": [40, 10, 30, 20, 5, 6, 1, 1, 2],
        }
    )
    data = _data(frame)
    split = leave_last_out(data)
    assert _held(data, split.test) == {("a", "1"), ("b", "2")}
    assert _held(data, split.validation) == {("a", "3"), ("b", "1")}
    # c has only 2 interactions: both train, c is not evaluated
    assert _held(data, split.train) == {("a", "2"), ("a", "4"), ("b", "3"), ("c", "1"), ("c", "2")}
    assert split.evaluated_users == 2
    # validation[i] and test[i] belong to the same user
    np.testing.assert_array_equal(data.users[split.validation], data.users[split.test])


def test_ties_in_time_keep_the_order_of_the_file():
    frame = pd.DataFrame(
        {"user": ["a"] * 4, "item": ["1", "2", "3", "4"], "timestamp": [1, 7, 7, 7]}
    )
    data = _data(frame)
    split = leave_last_out(data)
    assert _held(data, split.test) == {("a", "4")}
    assert _held(data, split.validation) == {("a", "3")}


def test_without_timestamps_the_split_is_random_per_user_and_seeded():
    users = np.repeat([f"u{i}" for i in range(50)], 6)
    frame = pd.DataFrame({"user": users, "item": [str(i % 6) for i in range(len(users))]})
    data = _data(frame)
    a, b, c = leave_last_out(data, seed=0), leave_last_out(data, seed=0), leave_last_out(data, 1)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.validation, b.validation)
    assert not np.array_equal(a.test, c.test)
    assert "random" in a.protocol
    # not always the last rows of the file
    last = {data.users[r]: r for r in range(len(data))}
    assert sum(int(r) != last[data.users[r]] for r in a.test) > 10
    assert len(set(a.train) | set(a.validation) | set(a.test)) == len(data)


def test_repeated_pairs_count_once_at_their_earliest_time():
    frame = pd.DataFrame(
        {"user": ["a", "a", "a", "a"], "item": ["1", "2", "1", "3"], "timestamp": [9, 2, 1, 5]}
    )
    data = _data(frame)
    assert len(data) == 3
    assert any("repeated" in note for note in data.notes)
    split = leave_last_out(data)
    assert _held(data, split.test) == {("a", "3")}  # item 1 counts at time 1, not 9


def test_user_item_matrix_is_binary_with_sorted_rows():
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["3", "1", "3"]})
    data = _data(frame)
    m = user_item_matrix(data)
    assert m.shape == (2, 2) and m.nnz == 3 and m.has_sorted_indices
    assert set(m.data.tolist()) == {1.0}
