"""Small synthetic interaction data for the recommendation tests: users who each like one
genre, items whose vectors say their genre, timestamps in a random order."""

from __future__ import annotations

import numpy as np
import pandas as pd

GENRES = ("action", "comedy", "drama", "horror")


def synthetic(
    n_users: int = 60, n_items: int = 40, per_user: int = 8, seed: int = 0, dim: int = 8
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items): user u likes genre u % 4 and picks items mostly of that genre."""
    rng = np.random.default_rng(seed)
    genre_of = np.arange(n_items) % len(GENRES)
    centres = rng.normal(size=(len(GENRES), dim))
    vectors = centres[genre_of] + 0.3 * rng.normal(size=(n_items, dim))
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(genre_of == u % len(GENRES))
        others = np.flatnonzero(genre_of != u % len(GENRES))
        popular_first = liked[np.argsort(rng.random(len(liked)) * (1 + liked))]
        picks = list(popular_first[: per_user - 1]) + [int(rng.choice(others))]
        for item in rng.permutation(picks):
            rows.append(
                (f"u{u}", f"i{item}", float(rng.integers(1, 6)), float(rng.integers(0, 10**6)))
            )
    interactions = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item": [f"i{j}" for j in range(n_items)],
            "title": [f"{GENRES[g]} film {j}" for j, g in enumerate(genre_of)],
            "genres": [GENRES[g] for g in genre_of],
            "vector": [list(map(float, v)) for v in vectors],
        }
    )
    return interactions, items
