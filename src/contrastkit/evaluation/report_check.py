"""Two parts of the report about "did refinement pay?": the safety net's verdict on held-out
training rows (a banner at the top of the page) and each refined accuracy beside the frozen
embeddings' linear probe (a column of the metrics table)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .verdict import ACCURACIES, BASELINE


def check_section(check: Mapping[str, Any] | None) -> str:
    """The verdict of `contrastkit.run.check` in one box: red with what to try when the
    refinement made things worse, amber when it gained nothing, green otherwise; "" without
    a check."""
    if not check:
        return ""
    verdict = check.get("verdict")
    tips = "".join(f"<li>{html.escape(tip)}</li>" for tip in check.get("advice", []))
    tried = f"<p>What to try:</p><ul>{tips}</ul>" if tips else ""
    heading, colour = {
        "worse": ("Refinement made things worse", "#fee2e2;border-color:#dc2626"),
        "no gain": ("Refinement gained nothing", "#fef3c7;border-color:#d97706"),
    }.get(verdict, ("Refinement is not worse", "#dcfce7;border-color:#16a34a"))
    return (
        f'<section class="check" style="background:{colour};border:2px solid">'
        f"<h2>{heading}</h2><p>{html.escape(check.get('message', ''))}.</p>{tried}"
        '<p class="note">Measured on training rows held out of training (never the test '
        "set): kNN-1 and the linear probe against the rows that trained, MAP@R among the "
        "held-out rows.</p></section>"
    )


def versus_frozen_linear_cell(key: str, before: Mapping, after: Mapping, fmt_delta) -> str:
    """The refined `key` minus the frozen linear probe, for the accuracy rows; "" otherwise."""
    if key not in ACCURACIES or key not in after or BASELINE not in before:
        return ""
    return fmt_delta(key, float(after[key]) - float(before[BASELINE]))
