"""Fixtures of the search and duplicate tests: the shipped text model, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The shipped all-MiniLM-L6-v2 as an Embedder (about 3 s to load)."""
    from contrastkit.apps.embedder import load_embedder

    return load_embedder(None)
