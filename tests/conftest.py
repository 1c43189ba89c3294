"""Session-wide test settings: no network, the embedding cache in a temporary folder, and one
torch thread."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_offline(tmp_path_factory):
    """Point CONTRASTKIT_CACHE at a temporary folder (never ~/.cache) and forbid hub downloads.

    Tests that count cache files set their own folder with monkeypatch on top of this one.
    """
    saved = {k: os.environ.get(k) for k in ("CONTRASTKIT_CACHE", "HF_HUB_OFFLINE")}
    os.environ["CONTRASTKIT_CACHE"] = str(tmp_path_factory.mktemp("contrastkit-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' tensors are small, and on a shared machine with busy cores torch's worker
    threads wait on each other: measured 0.28 s per adapter step with 2 threads against
    0.013 s with 1 while another job ran. One thread keeps the suite fast and steady."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
