"""Recommendation: users and items refined into one space by a two-tower model trained with
in-batch contrastive learning, items described by their text (so new items have vectors), and
measured against the usual baselines on the same leave-last-out split.

    from contrastkit.apps.recommend import Recommender
    rec = Recommender().fit("ratings.csv", "items.csv")
    rec.recommend(["196"], k=10)
"""

from contrastkit.apps.recommend.data import Columns
from contrastkit.apps.recommend.inputs import ReadOptions
from contrastkit.apps.recommend.recommender import Recommendation, Recommender

__all__ = ["Columns", "ReadOptions", "Recommendation", "Recommender"]
