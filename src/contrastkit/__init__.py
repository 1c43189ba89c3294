"""contrastkit: refine embeddings with contrastive learning.

from contrastkit import Refiner, evaluate
r = Refiner(method="supcon").fit(texts, labels)
Z = r.transform(texts)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from contrastkit.evaluation import evaluate
    from contrastkit.refiner import Refiner

__all__ = ["Refiner", "__version__", "evaluate", "losses"]


def __getattr__(name: str) -> Any:
    # Imported on first use so that `contrastkit --help` starts fast.
    if name == "Refiner":
        from contrastkit.refiner import Refiner

        return Refiner
    if name == "evaluate":
        from contrastkit.evaluation import evaluate

        return evaluate
    if name == "losses":
        import contrastkit.losses as losses

        return losses
    raise AttributeError(f"module 'contrastkit' has no attribute {name!r}")
