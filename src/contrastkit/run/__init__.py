"""The `contrastkit refine` job: files in, a run folder out (see `contrastkit.run.job`)."""

from contrastkit.run.job import ReadOptions, RunResult, refine_run

__all__ = ["ReadOptions", "RunResult", "refine_run"]
