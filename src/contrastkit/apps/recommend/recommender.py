"""`Recommender`: the two-tower recommender as a Python object.

    rec = Recommender().fit("ratings.csv", "items.csv")     # or pandas DataFrames
    rec.recommend(["196"], k=10)          # [Recommendation(user='196', items=[...], ...)]
    rec.similar_items(["1"], k=5)
    rec.save("model"); rec = Recommender.load("model")

A user the model knows nothing about (no interactions) gets the most popular items, and the
answer says so (`note`); an item that is not in the catalogue is an error that says how to add
it (`add_items`, by its text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from contrastkit.apps.recommend.catalogue import Catalogue
from contrastkit.apps.recommend.data import Interactions
from contrastkit.apps.recommend.inputs import ReadOptions, load_data
from contrastkit.apps.recommend.metrics import top_items
from contrastkit.apps.recommend.options import RecommenderOptions, make_options
from contrastkit.apps.recommend.scoring import feature_sums, item_matrix, user_matrix
from contrastkit.apps.recommend.split import user_item_matrix
from contrastkit.apps.recommend.towers import TowerShape, TwoTower
from contrastkit.apps.recommend.training import TrainOptions, train_towers
from contrastkit.errors import UserError
from contrastkit.training.seed import seed_everything

COLD_USER_NOTE = "unknown user (no interactions): the most popular items"
ID_ONLY_NOTE = (
    "this model knows users only by their id (no history pooling): the most popular items"
)


@dataclass
class Recommendation:
    """Items for one user (or like one item), best first; `note` says when the list does not
    come from the model (a cold user gets the most popular items)."""

    query: str | None
    items: list[str]
    titles: list[str]
    scores: list[float]
    note: str | None = None
    ignored: list[str] = field(default_factory=list)  # history items not in the catalogue


class Recommender:
    """Two-tower contrastive recommender (see `towers.py` and `loss.py`); the keywords are the
    fields of `RecommenderOptions`."""

    def __init__(self, **options) -> None:
        self.options: RecommenderOptions = make_options(**options)
        self.model_: TwoTower | None = None
        self.log_: list[dict] = []  # one row per training epoch

    # -- training ---------------------------------------------------------------------------
    def fit(self, interactions, items=None, *, read: ReadOptions = ReadOptions(), quiet=True):
        """Train on all `interactions` (a file path or a DataFrame with user and item columns,
        optionally rating and timestamp); `items` (path or DataFrame) gives texts/vectors."""
        o = self.options
        data, catalogue = load_data(
            interactions, items, read, use_text=o.item_text, text_model=o.text_model, quiet=quiet
        )
        return self.fit_rows(data, catalogue, quiet=quiet)

    def fit_rows(
        self,
        data: Interactions,
        catalogue: Catalogue,
        train_rows: np.ndarray | None = None,
        validate=None,
        quiet: bool = True,
    ) -> Recommender:
        """Train on the interactions at `train_rows` (all when None). `validate(recommender)`
        (optional) scores the model after each epoch; the best epoch's weights are kept."""
        o = self.options
        seed_everything(o.seed)
        self.catalogue_, self.user_ids_ = catalogue, np.asarray(data.user_ids, dtype=object)
        history = user_item_matrix(data, train_rows)
        self.popularity_ = np.asarray(history.sum(axis=0), dtype=np.int64).ravel()
        features = catalogue.features
        if not o.item_text and "text" in (catalogue.feature_kind or ""):
            features = None  # (load_data with use_text=False never embeds the text)
        width = 0 if features is None else features.shape[1]
        shape = TowerShape(
            data.n_users, data.n_items, width, width or o.dim, o.history, o.user_ids, o.hidden
        )
        self.model_ = TwoTower(shape, None if features is None else torch.from_numpy(features))
        self.history_ = history
        train = TrainOptions(
            **{k: getattr(o, k) for k in TrainOptions.__dataclass_fields__ if hasattr(o, k)},
            quiet=quiet,
        )
        state = train_towers(
            self.model_, history, train, None if validate is None else (lambda: validate(self))
        )
        self.log_ = state.history
        self.best_epoch_ = state.best_epoch
        self._vectors: np.ndarray | None = None
        return self

    def observe(self, data: Interactions, rows: np.ndarray | None = None) -> Recommender:
        """Add interactions (indexed like the training data) to the users' histories: the user
        tower uses them at once, no training needed."""
        self._check_fitted()
        extra = user_item_matrix(data, rows)
        combined = (self.history_ + extra).tocsr()
        combined.data[:] = 1.0
        combined.sort_indices()
        self.history_ = combined
        return self

    def add_items(
        self, items, read: ReadOptions = ReadOptions(), quiet: bool = True
    ) -> Recommender:
        """Add new items (a path or DataFrame like the items file) to the catalogue: with no
        interactions yet, their vectors come from their text (or vectors) alone."""
        from contrastkit.apps.recommend.catalogue import add_to_catalogue

        self._check_fitted()
        count, features = add_to_catalogue(self.catalogue_, items, read, quiet)
        self.model_.grow(None if features is None else torch.from_numpy(features), count)
        self.popularity_ = np.concatenate([self.popularity_, np.zeros(count, np.int64)])
        history = self.history_.tocsr(copy=True)
        history.resize((history.shape[0], history.shape[1] + count))
        self.history_, self._vectors = history, None
        return self

    # -- queries ----------------------------------------------------------------------------
    def recommend(self, users, k: int = 10, exclude_seen: bool = True) -> list[Recommendation]:
        """The k best items for each user id (a cold user: the most popular, said in `note`)."""
        self._check_fitted()
        users = [str(u) for u in ([users] if isinstance(users, str | int) else users)]
        rows = self.user_rows(users, missing_ok=True)
        known = np.array([r >= 0 and self._has_history(r) for r in rows], dtype=bool)
        scores = np.tile(self.popularity_.astype(np.float64), (len(users), 1))
        if known.any():
            vectors = self._user_vectors(self.history_, rows[known])
            scores[known] = vectors @ self.item_vectors().T
        if exclude_seen:
            seen = self.history_[np.maximum(rows, 0)].tocoo()
            ok = rows[seen.row] >= 0
            scores[seen.row[ok], seen.col[ok]] = -np.inf
        return [
            self._answer(user, scores[i], k, None if known[i] else COLD_USER_NOTE)
            for i, user in enumerate(users)
        ]

    def recommend_for_history(self, items, k: int = 10) -> Recommendation:
        """The k best items for a new user who has interacted with `items` (ids)."""
        self._check_fitted()
        items = [str(i) for i in items]
        rows = self.item_rows(items, missing_ok=True)
        ignored = [i for i, r in zip(items, rows, strict=True) if r < 0]
        rows = np.unique(rows[rows >= 0])
        if len(rows) == 0 or not self.options.history:
            note = COLD_USER_NOTE if self.options.history else ID_ONLY_NOTE
            return self._answer(None, self.popularity_.astype(np.float64), k, note, ignored)
        history = sp.csr_matrix(
            (np.ones(len(rows), np.float32), rows, [0, len(rows)]), shape=(1, len(self.popularity_))
        )
        vector = self._user_vectors(history, np.array([0]), users=False)[0]
        scores = self.item_vectors() @ vector
        scores[rows] = -np.inf
        return self._answer(None, scores, k, None, ignored)

    def similar_items(self, items, k: int = 10) -> list[Recommendation]:
        """The k items whose vectors are closest (cosine) to each given item's."""
        self._check_fitted()
        items = [str(i) for i in ([items] if isinstance(items, str | int) else items)]
        rows = self.item_rows(items)
        vectors = self.item_vectors()
        scores = (vectors[rows] @ vectors.T).astype(np.float64)
        scores[np.arange(len(rows)), rows] = -np.inf
        return [self._answer(item, scores[i], k) for i, item in enumerate(items)]

    def embed_items(self, items=None) -> np.ndarray:
        """Unit item vectors (all of the catalogue, in its order, when `items` is None)."""
        self._check_fitted()
        vectors = self.item_vectors()
        return vectors if items is None else vectors[self.item_rows([str(i) for i in items])]

    def embed_users(self, users) -> np.ndarray:
        """Unit user vectors, from each user's history (and id embedding, if the model has one)."""
        self._check_fitted()
        rows = self.user_rows([str(u) for u in users])
        cold = [str(users[i]) for i, r in enumerate(rows) if not self._has_history(r)]
        if cold:
            raise UserError(f"user {cold[0]!r} has no interactions, so there is nothing to embed")
        return self._user_vectors(self.history_, rows)

    # -- lookups ----------------------------------------------------------------------------
    def item_vectors(self) -> np.ndarray:
        if getattr(self, "_vectors", None) is None:
            self._vectors = item_matrix(self.model_)
        return self._vectors

    def user_rows(self, users: list[str], missing_ok: bool = False) -> np.ndarray:
        return _rows_of(self.user_ids_, users, "user", missing_ok)

    def item_rows(self, items: list[str], missing_ok: bool = False) -> np.ndarray:
        return _rows_of(self.catalogue_.ids, items, "item", missing_ok)

    def _has_history(self, row: int) -> bool:
        trained_user = self.options.user_ids and row < self.model_.shape.n_users
        return bool(self.history_.indptr[row + 1] > self.history_.indptr[row] or trained_user)

    def _user_vectors(self, history: sp.csr_matrix, rows: np.ndarray, users: bool = True):
        sums = feature_sums(history[rows], self.model_)
        ids = rows if users and self.options.user_ids else None
        return user_matrix(self.model_, history[rows], np.arange(len(rows)), sums, ids)

    def _answer(self, query, scores, k, note=None, ignored=()) -> Recommendation:
        k = max(0, min(int(k), int(np.isfinite(scores).sum())))
        top = top_items(scores[None, :], k)[0] if k else np.zeros(0, np.int64)
        return Recommendation(
            query,
            [str(self.catalogue_.ids[i]) for i in top],
            [self.catalogue_.titles[i] for i in top],
            [float(scores[i]) for i in top],
            note,
            list(ignored),
        )

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise UserError("this Recommender is not trained yet; call fit() or load() first")

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model folder (safetensors, JSON; replaced whole, only once complete)."""
        from contrastkit.apps.recommend.store import save_recommender

        self._check_fitted()
        save_recommender(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """A Recommender saved by `save` (every file checked against its checksum first)."""
        from contrastkit.apps.recommend.store import load_recommender

        return load_recommender(cls, Path(path))


def _rows_of(ids: np.ndarray, wanted: list[str], what: str, missing_ok: bool) -> np.ndarray:
    import pandas as pd

    rows = pd.Index(ids).get_indexer(pd.Index(wanted, dtype=object))
    if not missing_ok and (rows < 0).any():
        bad = wanted[int(np.flatnonzero(rows < 0)[0])]
        hint = (
            "it had no interactions when the model was trained"
            if what == "user"
            else "add it to the catalogue with its text (Recommender.add_items) to use it"
        )
        raise UserError(f"{what} {bad!r} is not known to this model; {hint}")
    return rows.astype(np.int64)
