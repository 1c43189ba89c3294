"""`contrastkit embed` and `contrastkit index` under torchrun (two CPU processes, gloo): each
process embeds its block of the rows, rank 0 gathers them in order and writes the output, and
the result equals the one-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch.distributed as dist
from search_helpers import clustered, refined_vectors_model

from contrastkit import Refiner
from contrastkit.apps.search import SearchIndex

SRC = Path(__file__).resolve().parents[2] / "src"
X = clustered(301, dim=16, seed=0)  # an odd number of rows: the blocks differ in size


def _torchrun(*args, cwd: Path) -> subprocess.CompletedProcess:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend for torch.distributed")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "contrastkit.cli", *map(str, args)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return refined_vectors_model(tmp_path_factory.mktemp("model") / "m", X)


def test_torchrun_embed_writes_every_row_once_in_order(tmp_path, model):
    np.save(tmp_path / "x.npy", X)
    done = _torchrun("embed", "--model", model, "--input", tmp_path / "x.npy", "--out",
                     tmp_path / "z.npy", cwd=tmp_path)  # fmt: skip
    assert done.stdout.count("wrote 301 embeddings") == 1  # rank 0 alone reports
    np.testing.assert_allclose(
        np.load(tmp_path / "z.npy"), Refiner.load(model).transform(X), atol=1e-5
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "z.npy"]


def test_torchrun_index_equals_the_one_process_index(tmp_path, model):
    ids = [f"r{i}" for i in range(len(X))]
    pq.write_table(pa.table({
        "id": ids, "part": (np.arange(len(X)) % 3).tolist(),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel(), pa.float32()), 16),
    }), tmp_path / "rows.parquet")  # fmt: skip
    done = _torchrun("index", "--input", tmp_path / "rows.parquet", "--out", tmp_path / "ix",
                     "--model", model, "--quiet", cwd=tmp_path)  # fmt: skip
    assert done.stdout.count("indexed 301 rows") == 1
    loaded = SearchIndex.load(tmp_path / "ix")
    alone = SearchIndex.build(
        X, model=model, ids=ids, metadata={"part": (np.arange(301) % 3).tolist()}
    )
    queries = X[::20]
    got = [[(h.id, h.metadata["part"]) for h in hits] for hits in loaded.search(queries, k=5)]
    want = [[(h.id, h.metadata["part"]) for h in hits] for hits in alone.search(queries, k=5)]
    assert got == want
