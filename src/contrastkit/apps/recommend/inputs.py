"""From what a user passes (file paths or pandas DataFrames) to indexed interactions and the
catalogue: the one way in for the Python API and the command."""

from __future__ import annotations

import os
from dataclasses import dataclass

from contrastkit.apps.recommend.catalogue import Catalogue, build_catalogue
from contrastkit.apps.recommend.data import (
    Columns,
    Interactions,
    ItemTable,
    index_interactions,
    interactions_from_table,
    read_table,
    table_from_frame,
)
from contrastkit.apps.recommend.items import read_items


@dataclass(frozen=True)
class ReadOptions:
    """How to read the interactions and items (the files' column names and filters)."""

    columns: Columns = Columns()
    min_rating: float | None = None
    item_column: str = "item"
    text_columns: tuple[str, ...] | None = None  # None: the columns named like descriptions
    vector_column: str | None = None


def read_interaction_table(source, options: ReadOptions):
    """The raw interactions of a file path or a DataFrame."""
    if isinstance(source, str | os.PathLike):
        table = read_table(source, "interactions")
    else:
        table = table_from_frame(source, "the interactions DataFrame")
    return interactions_from_table(table, options.columns, options.min_rating)


def read_item_table(source, options: ReadOptions) -> ItemTable | None:
    if source is None:
        return None
    if isinstance(source, ItemTable):
        return source
    columns = list(options.text_columns) if options.text_columns is not None else None
    return read_items(
        source,
        item_column=options.item_column,
        text_columns=columns,
        vector_column=options.vector_column,
    )


def load_data(
    interactions,
    items=None,
    options: ReadOptions = ReadOptions(),
    *,
    use_text: bool = True,
    text_model: str | None = None,
    quiet: bool = True,
) -> tuple[Interactions, Catalogue]:
    """Indexed interactions and the catalogue (item features embedded, from the cache when the
    same texts were embedded before)."""
    table = read_item_table(items, options)
    raw = read_interaction_table(interactions, options)
    data = index_interactions(raw, None if table is None else table.ids)
    catalogue = build_catalogue(
        data.item_ids, table, use_text=use_text, text_model=text_model, quiet=quiet
    )
    return data, catalogue
