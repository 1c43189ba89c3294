"""Nearest-neighbour search on unit vectors (faiss), shared by evaluation and the applications."""

from contrastkit.index.exact import build_index, search, search_leave_one_out

__all__ = ["build_index", "search", "search_leave_one_out"]
