"""Batch samplers for training: deterministic per (seed, epoch), rank-aware and resumable.

Both samplers yield lists of row indices and plan a whole epoch at once. The plan depends
only on (seed, epoch); with `world_size` > 1 every rank computes the same global plan and
takes batches `rank, rank + world_size, ...`, so ranks get distinct batches and the same
number of them. An epoch has `ceil(ceil(n / B) / world_size)` batches per rank, where
B = min(batch_size, n). Rows are drawn from shuffled passes without replacement; when an
epoch needs more rows than one pass (padding for equal batch counts), the next pass starts,
and a batch never holds the same row twice.

Resuming: `state_dict()` records (epoch, batches already yielded in that epoch);
`load_state_dict()` on a new sampler built with the same arguments continues with exactly
the batches the uninterrupted run would have had. A DataLoader prefetches batches, so a
trainer that iterates through one should save the number of batches it actually consumed:
`{"epoch": e, "batches_yielded": steps_done_in_epoch}`.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np

from contrastkit.errors import ConfigError


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class _RowStream:
    """The rows of one group as endless shuffled passes; `take` never repeats a row."""

    def __init__(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        self.rows, self.rng = rows, rng
        self.buf, self.pos = rng.permutation(rows), 0

    def take(self, k: int, exclude: set[int] | None = None) -> list[int]:
        """The next k rows not in `exclude`; skipped rows stay first in line."""
        if not exclude and self.pos + k <= len(self.buf):
            self.pos += k
            return self.buf[self.pos - k : self.pos].tolist()
        chosen: list[int] = []
        seen = set(exclude or ())
        skipped: list[int] = []
        while len(chosen) < k:
            if self.pos == len(self.buf):
                fresh = self.rng.permutation(self.rows)
                if skipped:  # they are still waiting in line: keep one copy of each row
                    fresh = fresh[~np.isin(fresh, skipped)]
                self.buf, self.pos = fresh, 0
            row = int(self.buf[self.pos])
            self.pos += 1
            if row in seen:
                skipped.append(row)
            else:
                chosen.append(row)
                seen.add(row)
        if skipped:
            rest = self.buf[self.pos :]
            self.buf, self.pos = np.concatenate([np.asarray(skipped, rest.dtype), rest]), 0
        return chosen

    def give_back(self, row: int) -> None:
        """Put a taken row first in line again (unless a later pass already holds it)."""
        rest = self.buf[self.pos :]
        if not (rest == row).any():
            self.buf, self.pos = np.concatenate([np.asarray([row], rest.dtype), rest]), 0


class _EpochSampler:
    """Iteration, epochs, ranks and resume state shared by both samplers."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int) -> None:
        self.n = _positive_int(n, "the number of rows")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.world_size = _positive_int(world_size, "world_size")
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer):
            raise ConfigError(f"rank must be an integer, got {rank!r}.")
        if not 0 <= rank < self.world_size:
            raise ConfigError(f"rank must be in 0..{self.world_size - 1}, got {rank}.")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
        self.rank, self.seed = int(rank), int(seed)
        self.effective_batch_size = min(self.batch_size, self.n)
        self.epoch = 0
        self._yielded = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    @property
    def batch_size_exceeds_data(self) -> bool:
        """True when batch_size > n: every batch holds all rows (the caller should warn)."""
        return self.batch_size > self.n

    def _global_plan(self, epoch: int) -> list[list[int]]:
        raise NotImplementedError

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        """This rank's batches of `epoch`, in order (a copy)."""
        if self._cache is None or self._cache[0] != epoch:
            plan = self._global_plan(epoch)
            self._cache = (epoch, plan[self.rank :: self.world_size])
        return [list(batch) for batch in self._cache[1]]

    def __len__(self) -> int:
        return self.batches_per_rank

    @property
    def batches_per_rank(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches_for_epoch(self.epoch)
        for i in range(self._yielded, len(batches)):
            self._yielded = i + 1
            yield batches[i]
        self.epoch, self._yielded = self.epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its first batch (unless it is the current, partly done one)."""
        if epoch != self.epoch:
            self.epoch, self._yielded = int(epoch), 0

    def _identity(self) -> dict:
        return {"n": self.n, "batch_size": self.batch_size, "seed": self.seed}

    def state_dict(self) -> dict:
        """The epoch and how many of its batches were yielded, plus what must match on load."""
        return {
            "epoch": self.epoch,
            "batches_yielded": self._yielded,
            "world_size": self.world_size,
            **self._identity(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue where `state` left off; keys other than epoch/batches_yielded are checked."""
        for key, value in {"world_size": self.world_size, **self._identity()}.items():
            if key in state and state[key] != value:
                raise ConfigError(
                    f"The saved sampler state has {key}={state[key]!r} but this sampler has "
                    f"{key}={value!r}; resume with the same data and settings."
                )
        epoch, done = int(state["epoch"]), int(state["batches_yielded"])
        if not 0 <= done <= self.batches_per_rank:
            raise ConfigError(
                f"The saved sampler state says {done} batches were yielded, but an epoch has "
                f"{self.batches_per_rank}; resume with the same data and settings."
            )
        self.epoch, self._yielded = epoch, done


class RandomBatchSampler(_EpochSampler):
    """Shuffled batches of row indices, for self-supervised training.

    With world_size == 1 an epoch is one pass: `ceil(n / batch_size)` batches, the last one
    partial (or dropped with `drop_last`). With world_size > 1 every batch is full (batches
    are gathered across ranks), the last ones continuing into the next shuffled pass.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        super().__init__(n, batch_size, seed, rank, world_size)
        self.drop_last = bool(drop_last)

    @property
    def batches_per_rank(self) -> int:
        size = self.effective_batch_size
        if self.drop_last:
            return max(1, (self.n // size) // self.world_size)
        return math.ceil(math.ceil(self.n / size) / self.world_size)

    def _global_plan(self, epoch: int) -> list[list[int]]:
        size = self.effective_batch_size
        sizes = [size] * (self.batches_per_rank * self.world_size)
        if self.world_size == 1 and not self.drop_last and self.n % size:
            sizes[-1] = self.n % size
        stream = _RowStream(np.arange(self.n, dtype=np.int64), self._rng(epoch))
        return [stream.take(k) for k in sizes]

    def _identity(self) -> dict:
        return {**super()._identity(), "drop_last": self.drop_last}


def _chunk_sizes(count: int, m: int) -> list[int]:
    """Split a class of `count` rows into pieces of m, never leaving a piece of 1 row."""
    whole, rest = divmod(count, m)
    sizes = [m] * whole
    if rest == 1 and whole and m > 1:
        if m >= 3:
            sizes[-1:] = [m - 1, 2]
        else:
            sizes[-1] = 3
    elif rest:
        sizes.append(rest)
    return sizes


class _ChunkQueue:
    """Class pieces in shuffled rounds (each round holds every class's pieces once)."""

    LOOKAHEAD = 64

    def __init__(self, pieces: list[tuple[int, int]], rng: np.random.Generator) -> None:
        self.pieces, self.rng = pieces, rng
        self.queue: deque[tuple[int, int]] = deque()

    def _refill(self) -> None:
        self.queue.extend(self.pieces[i] for i in self.rng.permutation(len(self.pieces)))

    def push_front(self, piece: tuple[int, int]) -> None:
        self.queue.appendleft(piece)

    def grow_piece_of(self, label: int) -> None:
        """Add one row to a waiting piece of `label` (if none waits, the row is skipped)."""
        for i, (other, size) in enumerate(self.queue):
            if other == label:
                self.queue[i] = (label, size + 1)
                return

    def pop(self, prefer: Callable[[int], bool], allow: Callable[[int], bool]) -> tuple[int, int]:
        """The first piece whose class is preferred (within LOOKAHEAD), else the first allowed."""
        if not self.queue:  # the next round starts only when this one is used up
            self._refill()
        for i, (label, _) in enumerate(itertools.islice(self.queue, self.LOOKAHEAD)):
            if prefer(label):
                return self._remove(i)
        return self.first_allowed(allow)

    def first_allowed(self, allow: Callable[[int], bool]) -> tuple[int, int]:
        """The first allowed piece, reading into the next round if needed (one must exist)."""
        i = 0
        while True:
            if i == len(self.queue):
                self._refill()
            if allow(self.queue[i][0]):
                return self._remove(i)
            i += 1

    def _remove(self, i: int) -> tuple[int, int]:
        piece = self.queue[i]
        del self.queue[i]
        return piece


class ClassBalancedBatchSampler(_EpochSampler):
    """Batches of about batch_size // m_per_class classes with m_per_class rows each.

    Every class is cut into pieces of m rows (a class smaller than m is one piece; a
    remainder of one row is merged so no piece has a single row). Pieces are shuffled and
    packed into batches of exactly min(batch_size, n) rows, preferring classes not yet in
    the batch; with too few classes a batch takes more pieces of the same classes (distinct
    rows). Classes are drawn in proportion to their size, so each row is seen about once
    per epoch (a one-row class is seen once, alone). When every class has at least two rows
    and batch_size is even, no class is ever alone in a batch: every anchor has a positive
    (with an odd batch_size this holds too, except in rare tight corners).
    `labels` are class ids or raw label values, one per row.
    """

    def __init__(
        self,
        labels: np.ndarray,
        batch_size: int,
        m_per_class: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ConfigError(f"labels must be 1-D, one per row; got shape {labels.shape}.")
        super().__init__(len(labels), batch_size, seed, rank, world_size)
        self.m_per_class = _positive_int(m_per_class, "m_per_class")
        if self.m_per_class > self.batch_size:
            raise ConfigError(
                f"m_per_class ({m_per_class}) must not exceed batch_size ({batch_size})."
            )
        _, ids, counts = np.unique(labels, return_inverse=True, return_counts=True)
        order = np.argsort(ids.ravel(), kind="stable")
        self._rows_by_class = np.split(order.astype(np.int64), np.cumsum(counts)[:-1])
        self._class_sizes = counts.astype(int).tolist()
        self._pieces = [
            (label, size)
            for label, count in enumerate(self._class_sizes)
            for size in _chunk_sizes(count, self.m_per_class)
        ]

    @property
    def num_classes(self) -> int:
        return len(self._class_sizes)

    @property
    def batches_per_rank(self) -> int:
        return math.ceil(math.ceil(self.n / self.effective_batch_size) / self.world_size)

    def _identity(self) -> dict:
        return {**super()._identity(), "m_per_class": self.m_per_class}

    def _global_plan(self, epoch: int) -> list[list[int]]:
        rng = self._rng(epoch)
        streams = [_RowStream(rows, rng) for rows in self._rows_by_class]
        queue = _ChunkQueue(self._pieces, rng)
        count = self.batches_per_rank * self.world_size
        return [self._fill_batch(streams, queue) for _ in range(count)]

    def _fill_batch(self, streams: list[_RowStream], queue: _ChunkQueue) -> list[int]:
        sizes, m = self._class_sizes, self.m_per_class
        picked: dict[int, list[int]] = {}
        filled = 0
        while filled < self.effective_batch_size:
            space = self.effective_batch_size - filled
            new_class_only = False
            if space == 1 and m > 1:  # one slot left: a class already here takes it
                label = next((c for c, rows in picked.items() if len(rows) < sizes[c]), None)
                if label is not None:
                    picked[label] += streams[label].take(1, set(picked[label]))
                    filled += 1
                    continue
                # none can: a class with 3+ rows here gives one back, a new class brings two
                label = next((c for c, rows in picked.items() if len(rows) >= 3), None)
                if label is not None:
                    streams[label].give_back(picked[label].pop())
                    filled, space, new_class_only = filled - 1, 2, True
            if new_class_only:  # some class is missing: the batch holds fewer than n rows
                label, piece = queue.first_allowed(lambda c: c not in picked)
            else:
                label, piece = queue.pop(
                    prefer=lambda c: c not in picked,
                    allow=lambda c: len(picked.get(c, ())) < sizes[c],
                )
            rows = picked.setdefault(label, [])
            take = min(piece, space, sizes[label] - len(rows))
            if piece - take == 1 and take >= 3 and m > 1:
                take -= 1  # leave two rows for later, not a lone one; a class here fills the slot
            rows += streams[label].take(take, set(rows))
            filled += take
            left = piece - take
            if left >= 2 or (left == 1 and m == 1):
                queue.push_front((label, left))
            elif left == 1:
                queue.grow_piece_of(label)
        return [row for rows in picked.values() for row in rows]
