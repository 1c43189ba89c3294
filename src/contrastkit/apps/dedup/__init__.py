"""Duplicate detection: every pair of rows whose cosine reaches a threshold (found through a
faiss index in chunks, never the n x n matrix), groups of duplicates, and the threshold given,
calibrated on labelled pairs, or the default."""

from contrastkit.apps.dedup.finder import Duplicates, duplicates_of_embeddings, find_duplicates
from contrastkit.apps.dedup.threshold import DEFAULT_THRESHOLD, calibrate, score_pairs

__all__ = [
    "DEFAULT_THRESHOLD",
    "Duplicates",
    "calibrate",
    "duplicates_of_embeddings",
    "find_duplicates",
    "score_pairs",
]
