"""Fixtures shared by the tests of unlabelled rows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contrastkit.refiner import unlabelled


@pytest.fixture
def short_self_supervised(monkeypatch):
    """Two epochs for the self-supervised stage (its plan alone would take hundreds of steps)."""
    plan = unlabelled.self_supervised_plan

    def short(*args):
        return replace(plan(*args), epochs=2)

    monkeypatch.setattr(unlabelled, "self_supervised_plan", short)
