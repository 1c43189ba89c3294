"""The kinds of faiss index an application can hold, and the choice among them by size.

Every kind scores by inner product on unit rows (cosine), stores int64 keys given by the
caller (`add_with_ids`) and can remove rows by key:

| kind | faiss | bytes a row (d = 384) | results |
|---|---|---|---|
| `flat` | `IDMap2,Flat` | 4 d + 16 | exact |
| `ivf` | `IVF{nlist},Flat` | 4 d + 8 | approximate: the `nprobe` nearest of `nlist` cells are scanned |
| `ivf-sq8` | `IVF{nlist},SQ8` | d + 8 | approximate; scores rounded to 8 bits a dimension |
| `ivf-pq` | `IVF{nlist},PQ{m}x8` | m + 8 | approximate; scores from product-quantised codes |

HNSW is not offered: faiss cannot remove rows from an HNSW graph, and on the 2-core machine
it built slower than IVF and held more memory per row at the same recall (benchmarks/search.py,
docs/search.md).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from contrastkit.errors import ConfigError

KINDS = ("flat", "ivf", "ivf-sq8", "ivf-pq")
APPROXIMATE = ("ivf", "ivf-sq8", "ivf-pq")

# Rows up to which "auto" keeps the exact index. Measured (benchmarks/search.py, 2 cores,
# d = 384, 1000 queries, k = 10): an exact search over 1e5 rows answers a query in well under
# a millisecond a core, and the 1.5 GiB a million rows take is the point where IVF's speed-up
# (>= 10x at recall@10 >= 0.95) starts to matter more than exact results.
EXACT_UP_TO = 200_000

PQ_MIN_ROWS = 1000
# faiss's k-means wants at least 39 training rows a cell; more only lengthen training.
_TRAIN_ROWS_PER_CELL = 40


def check_kind(kind: str) -> str:
    """`kind` when it is "auto" or one of KINDS, else a ConfigError."""
    if kind != "auto" and kind not in KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; use auto, {', '.join(KINDS)}")
    return kind


def choose_kind(n_rows: int, kind: str = "auto") -> str:
    """`kind` itself, or for "auto": `flat` up to EXACT_UP_TO rows, else `ivf`."""
    if check_kind(kind) == "auto":
        return "flat" if n_rows <= EXACT_UP_TO else "ivf"
    return kind


def cells_for(n_rows: int) -> int:
    """IVF cells for `n_rows`: about 4 sqrt(n), and never fewer than 39 training rows a cell."""
    return max(1, min(int(4 * math.sqrt(max(n_rows, 1))), n_rows // 39))


def pq_codes_for(dim: int) -> int:
    """Sub-quantisers of `ivf-pq`: one byte for every 8 dimensions (48 bytes at d = 384), a
    divisor of `dim` as faiss needs."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


def make_index(kind: str, dim: int, n_rows: int) -> faiss.Index:
    """An empty (untrained) index of `kind` for about `n_rows` rows of width `dim`."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "ivf-pq" and n_rows < PQ_MIN_ROWS:
        raise ConfigError(
            f"ivf-pq learns 256 codes per sub-vector and needs at least {PQ_MIN_ROWS} rows, got "
            f"{n_rows}; use the kind flat or ivf-sq8 for fewer rows"
        )
    nlist = cells_for(n_rows)
    codes = {"ivf": "Flat", "ivf-sq8": "SQ8", "ivf-pq": f"PQ{pq_codes_for(dim)}x8"}
    if kind not in codes:
        raise ConfigError(f"unknown index kind {kind!r}; use {', '.join(KINDS)}")
    return faiss.index_factory(dim, f"IVF{nlist},{codes[kind]}", faiss.METRIC_INNER_PRODUCT)


def train_index(index: faiss.Index, X: np.ndarray, seed: int = 0) -> None:
    """Train an IVF index on a sample of X (a no-op for the exact index)."""
    if index.is_trained:
        return
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = seed
    # 10 k-means iterations instead of faiss's 25: 2.5x faster training with the same cells
    # to probe (2e5 clustered rows, d = 384: nprobe 4 both, held-out recall@10 0.951 / 0.955).
    ivf.cp.niter = 10
    wanted = _TRAIN_ROWS_PER_CELL * ivf.nlist
    if isinstance(ivf, faiss.IndexIVFPQ):
        ivf.do_polysemous_training = False  # only polysemous search uses it; 3x the time
        wanted = max(wanted, _TRAIN_ROWS_PER_CELL * 256)  # each sub-quantiser has 256 codes
    rows = min(len(X), wanted)
    sample = np.random.default_rng(seed).choice(len(X), rows, replace=False)
    index.train(np.ascontiguousarray(X[np.sort(sample)], dtype=np.float32))


def add_rows(index: faiss.Index, X: np.ndarray, keys: np.ndarray) -> None:
    index.add_with_ids(
        np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(keys, dtype=np.int64)
    )


def remove_keys(index: faiss.Index, keys: np.ndarray) -> int:
    """Remove the rows stored under `keys`; returns how many were removed."""
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(keys, dtype=np.int64))
    return int(index.remove_ids(selector))


def index_kind(index: faiss.Index) -> str:
    """The kind (of KINDS) of an index made by `make_index`."""
    try:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        return "flat"
    if isinstance(ivf, faiss.IndexIVFFlat):
        return "ivf"
    return "ivf-pq" if isinstance(ivf, faiss.IndexIVFPQ) else "ivf-sq8"


def cell_count(index: faiss.Index) -> int:
    """Cells of an IVF index (0 for the exact index)."""
    return 0 if index_kind(index) == "flat" else int(faiss.extract_index_ivf(index).nlist)


def search_keys(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    nprobe: int = 1,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, keys) of the top `k`, nearest first; key -1 (score -inf) where fewer than `k`
    rows qualify. `allowed`: only these keys may be returned. An IVF query whose probed cells
    hold fewer than `k` rows is searched again with 4 times the cells, until it has `k` hits or
    every cell is probed."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores, keys = index.search(queries, k, params=search_params(index, nprobe, allowed))
    nlist = cell_count(index)
    short = np.flatnonzero((keys < 0).any(axis=1))
    while len(short) and nprobe < nlist:
        nprobe = min(4 * nprobe, nlist)
        params = search_params(index, nprobe, allowed)
        scores[short], keys[short] = index.search(queries[short], k, params=params)
        short = short[(keys[short] < 0).any(axis=1)]
    scores[keys < 0] = -np.inf
    return scores, keys


def range_keys(
    index: faiss.Index, queries: np.ndarray, radius: float, nprobe: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faiss range search: (limits, scores, keys); query i's hits are [limits[i], limits[i+1])
    and score above `radius`."""
    params = search_params(index, nprobe, None)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    return index.range_search(queries, float(radius), params=params)


def search_params(index: faiss.Index, nprobe: int, allowed: np.ndarray | None):
    """faiss search parameters: the cells to probe (IVF) and the keys a result may have."""
    selector = None
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    if index_kind(index) == "flat":
        return None if selector is None else faiss.SearchParameters(sel=selector)
    nlist = cell_count(index)
    if selector is not None and index.ntotal:
        # A filter that keeps a fraction f of the rows leaves about f of each probed cell:
        # probe 1/f times the cells to find as many candidates.
        nprobe = math.ceil(nprobe * index.ntotal / max(len(allowed), 1))
    params = faiss.SearchParametersIVF(nprobe=max(1, min(nprobe, nlist)))
    if selector is not None:
        params.sel = selector
    return params
