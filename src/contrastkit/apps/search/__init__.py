"""Semantic search: `SearchIndex` over texts or vectors embedded by any model contrastkit can
load, with ids, metadata filters, adding and removing rows, and a folder on disk."""

from contrastkit.apps.search.index import SearchIndex
from contrastkit.apps.search.rows import Hit, hits_frame

__all__ = ["Hit", "SearchIndex", "hits_frame"]
