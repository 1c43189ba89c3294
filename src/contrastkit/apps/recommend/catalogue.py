"""The catalogue: every item's id, display title, genre and frozen feature (its text embedded
by the frozen text model, its given vector, or both side by side)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contrastkit.apps.recommend.baselines import unit_rows
from contrastkit.apps.recommend.data import ItemTable
from contrastkit.errors import DataError


@dataclass
class Catalogue:
    ids: np.ndarray  # str objects
    titles: list[str]
    genres: list[str] | None
    features: np.ndarray | None  # (items, d) float32, rows of unit blocks; None: ids only
    text_model: str | None = None  # None: the shipped default (when the features hold text)
    feature_kind: str | None = None  # "text", "vectors", "text+vectors" or None

    def __len__(self) -> int:
        return len(self.ids)


def encode_texts(texts: list[str], text_model: str | None, quiet: bool = True) -> np.ndarray:
    """Unit text embeddings of the frozen model (cached on disk); an empty text is a zero row."""
    from contrastkit.models.backbones import FrozenTextBase

    base = FrozenTextBase(text_model, "cpu")
    present = [i for i, t in enumerate(texts) if t.strip()]
    out = np.zeros((len(texts), base.dim), dtype=np.float32)
    if present:
        out[present] = unit_rows(base.encode([texts[i] for i in present], progress=not quiet))
    return out


def item_features(
    items: ItemTable, use_text: bool, text_model: str | None, quiet: bool
) -> tuple[np.ndarray | None, str | None]:
    """(features, kind) of the items of an items file, in its row order."""
    parts, kinds = [], []
    if use_text and items.texts is not None:
        parts.append(encode_texts(items.texts, text_model, quiet))
        kinds.append("text")
    if items.vectors is not None:
        parts.append(unit_rows(items.vectors))
        kinds.append("vectors")
    if not parts:
        return None, None
    return np.concatenate(parts, axis=1), "+".join(kinds)


def build_catalogue(
    item_ids: np.ndarray,
    items: ItemTable | None,
    *,
    use_text: bool = True,
    text_model: str | None = None,
    quiet: bool = True,
) -> Catalogue:
    """The catalogue of `item_ids` (the items file's items first, in its order, as
    `index_interactions` lays them out); items not in the items file have no feature."""
    titles = [str(i) for i in item_ids]
    if items is None:
        return Catalogue(np.asarray(item_ids, dtype=object), titles, None, None)
    n = len(items.ids)
    if list(item_ids[:n]) != list(items.ids):
        raise DataError("the catalogue does not start with the items file's items")
    if items.titles is not None:
        titles[:n] = [t or str(i) for t, i in zip(items.titles, items.ids, strict=True)]
    genres = None
    if items.genres is not None:
        genres = list(items.genres) + ["(not in the items file)"] * (len(item_ids) - n)
    features, kind = item_features(items, use_text, text_model, quiet)
    if features is not None and len(item_ids) > n:
        features = np.concatenate([features, np.zeros((len(item_ids) - n, features.shape[1]))])
    catalogue = Catalogue(np.asarray(item_ids, dtype=object), titles, genres, features)
    catalogue.feature_kind = kind
    catalogue.text_model = text_model if kind and "text" in kind else None
    if features is not None:
        catalogue.features = features.astype(np.float32)
    return catalogue


def add_to_catalogue(
    catalogue: Catalogue, source, read, quiet: bool
) -> tuple[int, np.ndarray | None]:
    """Append the items of `source` (path or DataFrame like the items file) to `catalogue`;
    (how many, their features) for the model to grow by."""
    from contrastkit.apps.recommend.inputs import read_item_table

    table = read_item_table(source, read)
    known = set(catalogue.ids.tolist())
    already = [i for i in table.ids if i in known]
    if already:
        raise DataError(f"item {already[0]!r} is already in the catalogue; add only new items")
    kind = catalogue.feature_kind
    if kind is None:
        raise DataError(
            "this model has no item text or vectors, so new items cannot be embedded; train it "
            "with an items file to recommend items nobody has interacted with yet"
        )
    features, new_kind = item_features(table, "text" in kind, catalogue.text_model, quiet)
    if new_kind != kind:
        raise DataError(
            f"the model's items are described by {kind}, the new items by {new_kind or 'nothing'}; "
            "give the new items the same columns"
        )
    catalogue.ids = np.concatenate([catalogue.ids, np.asarray(table.ids, dtype=object)])
    catalogue.titles += table.titles or [str(i) for i in table.ids]
    if catalogue.genres is not None:
        catalogue.genres += table.genres or ["(none)"] * len(table.ids)
    catalogue.features = np.concatenate([catalogue.features, features]).astype(np.float32)
    return len(table.ids), features
