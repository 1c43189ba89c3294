"""Fixtures for the data tests: the shared real data sets (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _shared_file(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data file {path} is missing (see the project's data README)")
    return path


@pytest.fixture(scope="session")
def shared_file():
    """shared_file("banking77", "train.csv"): a file under ../shared/data, or skip the test."""
    return _shared_file


@pytest.fixture(scope="session")
def fashion_mnist_path() -> Path:
    return _shared_file("fashion-mnist", "fashion-mnist.npz")


@pytest.fixture(scope="session")
def fashion_mnist_train(fashion_mnist_path):
    """Read once per session: the file is 30 MB compressed and takes ~1 s to read."""
    from contrastkit.data import read_dataset

    return read_dataset(fashion_mnist_path, split="train")
