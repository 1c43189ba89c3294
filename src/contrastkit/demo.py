"""`contrastkit demo`: the main job end to end on data every install has (scikit-learn's digits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contrastkit.run import RunResult, refine_run


def write_digits(path: Path, seed: int = 0) -> Path:
    """Digits (1797 8x8 images as 64-d vectors, 10 classes) split 70/30 by class into an .npz."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32), y, test_size=0.3, random_state=seed, stratify=y
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=X_train, y_train=y_train, x_test=X_test, y_test=y_test)
    return path


def run_demo(out_dir: str | Path, quiet: bool = False) -> RunResult:
    out_dir = Path(out_dir)
    data = write_digits(out_dir / "data" / "digits.npz")
    return refine_run(
        str(data), out_dir / "run", options={"method": "supcon", "quiet": quiet}, overwrite=True
    )
