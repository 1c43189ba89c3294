"""Batch samplers: batch contents, epoch coverage, determinism, resume and ranks."""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastkit.data import ClassBalancedBatchSampler, RandomBatchSampler
from contrastkit.errors import ConfigError


def _all_ranks(make, world_size: int, epoch: int = 0) -> list[list[list[int]]]:
    return [make(rank).batches_for_epoch(epoch) for rank in range(world_size)]


def _check_batches(batches, labels, batch_size, m, positives=True):
    """Full, duplicate-free batches; with `positives`, no class has a lone row in a batch."""
    for batch in batches:
        assert len(batch) == min(batch_size, len(labels))
        assert len(set(batch)) == len(batch), "a row repeated within a batch"
        assert all(0 <= row < len(labels) for row in batch)
        if positives and m >= 2:
            for label, count in Counter(labels[batch].tolist()).items():
                assert count >= 2, f"class {label} alone in a batch"


@settings(max_examples=300, deadline=None)
@given(
    class_sizes=st.lists(st.integers(1, 25), min_size=1, max_size=12),
    m=st.integers(1, 5),
    extra=st.integers(0, 40),
    seed=st.integers(0, 2**31),
)
def test_class_balanced_batches_are_full_and_keep_positives(class_sizes, m, extra, seed):
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    labels = np.random.default_rng(seed).permutation(labels)
    batch_size = m + extra
    sampler = ClassBalancedBatchSampler(labels, batch_size, m, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(len(labels) / min(batch_size, len(labels)))
    # guaranteed: no class alone in a batch when every class has 2+ rows and the batch size is
    # even (an odd batch of classes of 2 rows cannot avoid it; odd sizes usually manage too)
    guaranteed = min(class_sizes) >= 2 and batch_size % 2 == 0
    _check_batches(batches, labels, batch_size, m, positives=guaranteed)


def test_balanced_classes_each_row_once_per_epoch_and_m_rows_per_class():
    labels = np.repeat(np.arange(20), 12)  # 240 rows, 48 = 12 classes x 4 per batch
    sampler = ClassBalancedBatchSampler(labels, 48, 4, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == 5
        assert sorted(np.concatenate(batches).tolist()) == list(range(240))
        for batch in batches:
            assert all(c % 4 == 0 for c in Counter(labels[batch].tolist()).values())


def test_most_rows_seen_each_epoch_with_uneven_classes():
    labels = np.random.default_rng(0).integers(0, 40, 2000)
    sampler = ClassBalancedBatchSampler(labels, 60, 4, seed=0)
    seen = np.bincount(np.concatenate(list(sampler)), minlength=len(labels))
    assert (seen > 0).mean() > 0.98 and seen.max() <= 2
    _check_batches(sampler.batches_for_epoch(0), labels, 60, 4)


def test_one_huge_class_and_tiny_ones():
    labels = np.concatenate([np.zeros(500, int), np.repeat([1, 2, 3], 3), [4]])
    sampler = ClassBalancedBatchSampler(labels, 32, 4, seed=1)
    batches = list(sampler)
    _check_batches(batches, labels, 32, 4, positives=False)
    lone = [c for b in batches for c, k in Counter(labels[b].tolist()).items() if k == 1]
    assert lone == [4]  # only the class with a single row is ever alone
    seen = np.bincount(np.concatenate(batches), minlength=len(labels))
    assert (seen > 0).all()  # the tiny classes, and the single row of class 4, are drawn too


def test_classes_smaller_than_m_give_all_their_rows():
    labels = np.repeat(np.arange(10), 3)  # every class has 3 rows, m = 5
    batches = ClassBalancedBatchSampler(labels, 12, 5, seed=2).batches_for_epoch(0)
    _check_batches(batches, labels, 12, 5)
    for batch in batches:
        assert all(c in (2, 3) for c in Counter(labels[batch].tolist()).values())


def test_few_classes_fill_the_batch_with_more_rows_each():
    labels = np.repeat([0, 1], 50)  # 2 classes, but batch_size // m = 8
    batches = ClassBalancedBatchSampler(labels, 32, 4, seed=0).batches_for_epoch(0)
    _check_batches(batches, labels, 32, 4)
    assert all(set(labels[b].tolist()) == {0, 1} for b in batches)


def test_batch_larger_than_data_is_one_batch_of_all_rows():
    labels = np.array([0, 0, 1, 1, 2])
    sampler = ClassBalancedBatchSampler(labels, 64, 2)
    assert sampler.batch_size_exceeds_data and len(sampler) == 1
    (batch,) = list(sampler)
    assert sorted(batch) == [0, 1, 2, 3, 4]
    random = RandomBatchSampler(5, 64)
    assert random.batch_size_exceeds_data and [sorted(b) for b in random] == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize("kind", ["balanced", "random"])
def test_plan_depends_only_on_seed_and_epoch(kind):
    labels = np.random.default_rng(0).integers(0, 8, 300)

    def make(seed):
        if kind == "balanced":
            return ClassBalancedBatchSampler(labels, 24, 3, seed=seed)
        return RandomBatchSampler(300, 24, seed=seed)

    walked = make(5)
    for _ in range(3):  # epochs 0, 1, 2 by plain iteration (the epoch advances by itself)
        last = list(walked)
    fresh = make(5)
    fresh.set_epoch(2)
    assert list(fresh) == last
    assert make(5).batches_for_epoch(2) == last
    assert make(6).batches_for_epoch(2) != last
    assert make(5).batches_for_epoch(1) != last


@pytest.mark.parametrize("kind", ["balanced", "random"])
def test_resume_equals_uninterrupted(kind):
    labels = np.random.default_rng(1).integers(0, 6, 200)

    def make():
        if kind == "balanced":
            return ClassBalancedBatchSampler(labels, 16, 4, seed=9)
        return RandomBatchSampler(200, 16, seed=9)

    straight = make()
    expected = [batch for _ in range(3) for batch in straight]  # three whole epochs

    first = make()
    got = [batch for _ in range(1) for batch in first]  # epoch 0
    half = len(first) // 2
    for i, batch in enumerate(first):  # half of epoch 1, then "crash"
        got.append(batch)
        if i + 1 == half:
            break
    state = first.state_dict()
    assert state["epoch"] == 1 and state["batches_yielded"] == half

    resumed = make()
    resumed.load_state_dict(state)
    resumed.set_epoch(1)  # a trainer calling set_epoch for the current epoch keeps the offset
    got += list(resumed)  # rest of epoch 1
    got += list(resumed)  # epoch 2
    assert got == expected


def test_load_state_rejects_other_settings():
    labels = np.repeat(np.arange(4), 5)
    state = ClassBalancedBatchSampler(labels, 8, 2, seed=1).state_dict()
    with pytest.raises(ConfigError, match="seed=1 but this sampler has seed=2"):
        ClassBalancedBatchSampler(labels, 8, 2, seed=2).load_state_dict(state)
    with pytest.raises(ConfigError, match="m_per_class"):
        ClassBalancedBatchSampler(labels, 8, 4, seed=1).load_state_dict(state)
    # a trainer may save only its own count of consumed batches
    sampler = ClassBalancedBatchSampler(labels, 8, 2, seed=1)
    sampler.load_state_dict({"epoch": 4, "batches_yielded": 1})
    assert list(sampler) == sampler.batches_for_epoch(4)[1:]


@pytest.mark.parametrize("world_size", [2, 3])
def test_class_balanced_ranks_split_one_plan(world_size):
    labels = np.random.default_rng(2).integers(0, 10, 250)
    per_rank = _all_ranks(
        lambda r: ClassBalancedBatchSampler(labels, 20, 4, seed=4, rank=r, world_size=world_size),
        world_size,
    )
    lengths = {len(batches) for batches in per_rank}
    assert lengths == {math.ceil(math.ceil(250 / 20) / world_size)}
    single = ClassBalancedBatchSampler(labels, 20, 4, seed=4)
    # the union of the ranks' batches is the world's plan: rank r takes batches r, r + ws, ...
    interleaved = [per_rank[i % world_size][i // world_size] for i in range(len(single))]
    assert interleaved == single.batches_for_epoch(0)[: len(single)]
    for batches in per_rank:
        _check_batches(batches, labels, 20, 4)
    everything = [tuple(b) for batches in per_rank for b in batches]
    assert len(set(everything)) == len(everything)  # no batch is given to two ranks


def test_random_sampler_ranks_get_disjoint_rows():
    per_rank = _all_ranks(lambda r: RandomBatchSampler(120, 10, seed=1, rank=r, world_size=4), 4)
    assert [len(b) for b in per_rank] == [3, 3, 3, 3]
    rows = np.concatenate([np.concatenate(b) for b in per_rank])
    assert sorted(rows.tolist()) == list(range(120))


def test_random_sampler_pads_ranks_with_full_batches():
    per_rank = _all_ranks(lambda r: RandomBatchSampler(25, 4, seed=0, rank=r, world_size=3), 3)
    assert [len(b) for b in per_rank] == [3, 3, 3]  # ceil(ceil(25 / 4) / 3)
    for batches in per_rank:
        assert all(len(b) == 4 and len(set(b)) == 4 for b in batches)
    seen = np.concatenate([np.concatenate(b) for b in per_rank])
    assert set(seen.tolist()) == set(range(25))


def test_random_sampler_one_rank_covers_every_row_once():
    sampler = RandomBatchSampler(23, 5, seed=3)
    batches = list(sampler)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    dropped = list(RandomBatchSampler(23, 5, seed=3, drop_last=True))
    assert [len(b) for b in dropped] == [5, 5, 5, 5]


def test_batches_never_repeat_a_row_across_passes():
    # 7 rows in batches of 5 on 5 ranks: most batches straddle two shuffled passes
    for rank in range(5):
        batches = list(RandomBatchSampler(7, 5, seed=0, rank=rank, world_size=5))
        assert len(batches) == 1 and all(len(set(b)) == 5 for b in batches)
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    for rank in range(4):
        sampler = ClassBalancedBatchSampler(labels, 6, 3, seed=2, rank=rank, world_size=4)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            assert all(len(set(b)) == 6 for b in sampler)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ClassBalancedBatchSampler(np.zeros(4), 4, 8), "must not exceed batch_size"),
        (lambda: ClassBalancedBatchSampler(np.zeros(4), 0, 1), "batch_size must be a positive"),
        (lambda: ClassBalancedBatchSampler(np.zeros((2, 2)), 4, 2), "1-D"),
        (lambda: ClassBalancedBatchSampler(np.zeros(0), 4, 2), "number of rows"),
        (lambda: RandomBatchSampler(10, 2, rank=2, world_size=2), r"rank must be in 0\.\.1"),
        (lambda: RandomBatchSampler(10, 2, seed=-1), "seed must be a non-negative"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_plan_is_fast_enough_for_a_large_data_set():
    labels = np.random.default_rng(0).integers(0, 500, 200_000)
    sampler = ClassBalancedBatchSampler(labels, 256, 4)
    start = time.perf_counter()
    batches = sampler.batches_for_epoch(0)
    assert time.perf_counter() - start < 5.0
    assert len(batches) == -(-200_000 // 256)
