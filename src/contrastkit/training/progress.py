"""A rich progress bar for training (loss and rows/s), silent when asked to be quiet."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainingProgress:
    def __init__(
        self, total_steps: int, *, quiet: bool = False, description: str = "training"
    ) -> None:
        self.quiet = quiet
        self._rows = 0
        self._start = time.perf_counter()
        self._progress = None
        if not quiet:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} rows/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(
                description, total=total_steps, loss="-", speed="-"
            )

    def __enter__(self) -> TrainingProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress:
            self._progress.stop()

    def advance_to(self, step: int) -> None:
        if self._progress:
            self._progress.update(self._task, completed=step)

    def update(self, step: int, loss: float, rows: int, epoch: int) -> None:
        self._rows += rows
        if self._progress is None:
            return
        speed = self._rows / max(1e-9, time.perf_counter() - self._start)
        self._progress.update(
            self._task,
            completed=step,
            loss=f"{loss:.4f}",
            speed=f"{speed:,.0f}",
            description=f"epoch {epoch}",
        )

    def log(self, message: str) -> None:
        if self._progress:
            self._progress.console.print(message)
