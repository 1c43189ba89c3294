"""write_report: content, escaping, self-containment, errors, and a headless Chromium render."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from eval_references import clustered
from PIL import Image

from contrastkit.evaluation import evaluate, write_report

NASTY_NAME = '<b>"cards" & $x$</b>'
NASTY_TEXT = "<script>alert('x')</script> see https://example.com/phish"


def _refined(Z: np.ndarray, y: np.ndarray, pull: float) -> np.ndarray:
    """A stand-in for refinement: pull every row towards its class mean (train means only)."""
    means = np.stack([Z[y == c].mean(axis=0) for c in np.unique(y)])
    return ((1 - pull) * Z + pull * means[y]).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    Z, y = clustered(n_classes=6, per_class=90, dim=24, spread=0.9, seed=11)
    train_Z, train_y, test_Z, test_y = Z[:300], y[:300], Z[300:], y[300:]
    names = ["card_arrival", "top_up_failed", NASTY_NAME, "pin_blocked", "exchange_rate", "x"]
    train_after = _refined(train_Z, train_y, 0.6)
    test_after = _refined(test_Z, test_y, 0.6)
    examples = [f"{NASTY_TEXT} #{i}" for i in range(len(test_y))]
    return {
        "train_before": train_Z,
        "train_after": train_after,
        "train_labels": train_y,
        "test_before": test_Z,
        "test_after": test_after,
        "test_labels": test_y,
        "class_names": names,
        "examples": examples,
        "before": evaluate(train_Z, train_y, test_Z, test_y),
        "after": evaluate(train_after, train_y, test_after, test_y),
    }


HISTORY = [
    {"epoch": 1 + s // 50, "step": s, "loss": 3.0 / (1 + s / 40), "lr": 1e-3 * (1 - s / 200)}
    for s in range(0, 200, 10)
] + [{"epoch": 4, "step": 200, "val_knn1": 0.93}]


@pytest.fixture(scope="module")
def full_report(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    out = write_report(
        path,
        **data,
        history=HISTORY,
        config={"method": "supcon", "model": "<tiny>", "optimizer": {"lr": 1e-3}},
        timing={"fit_s": 12.5, "encode_s": 0.25},
        title="Report <for> test",
    )
    return out, out.read_text(encoding="utf-8")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_writes_one_html_page_with_every_section(full_report):
    path, page = full_report
    assert path.exists() and page.startswith("<!DOCTYPE html>")
    for heading in (
        "Metrics, before and after",
        "Training",
        "Map of the test embeddings",
        "Cosine similarity of same-class and different-class pairs",
        "Per-class accuracy change",
        "Most confused classes after refinement",
        "Configuration",
        "Timing",
    ):
        assert f"<h2>{heading}</h2>" in page


def test_images_are_inline_pngs(full_report):
    _, page = full_report
    images = _images(page)
    assert len(images) == 4  # curves, maps, similarity histograms, per-class changes
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            assert im.format == "PNG" and im.width > 300


def test_no_external_references(full_report):
    _, page = full_report
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "url(" not in page and "@import" not in page
    assert len(re.findall(r"<img ", page)) == page.count('src="data:image/png;base64,')


def test_user_strings_are_escaped(full_report):
    _, page = full_report
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; see https://example.com" in page
    assert "Report &lt;for&gt; test" in page and "&lt;tiny&gt;" in page
    assert NASTY_NAME not in page


def test_headline_states_the_main_gain(data, full_report):
    _, page = full_report
    b, a = data["before"]["knn1_accuracy"], data["after"]["knn1_accuracy"]
    expected = f"kNN accuracy, k=1: {100 * b:.2f} % → <b>{100 * a:.2f} %</b>"
    assert expected in page
    assert f"({100 * (a - b):+.2f} points)" in page


def test_metric_changes_are_coloured_by_direction(data, full_report):
    _, page = full_report
    before, after = data["before"], data["after"]
    assert after["knn1_accuracy"] > before["knn1_accuracy"]
    assert after["alignment"] < before["alignment"]  # lower is better: a gain
    for key in ("knn1_accuracy", "alignment"):
        row = re.search(rf'<div class="key">{key}</div>.*?</tr>', page, re.S).group(0)
        assert 'class="num good"' in row, key


def test_config_and_timing_tables(full_report):
    _, page = full_report
    assert "<th>optimizer.lr</th><td>0.001</td>" in page
    assert "<th>fit</th><td>12.5 s</td>" in page and "<th>encode</th><td>0.250 s</td>" in page


def test_minimal_inputs_use_leave_one_out_and_skip_optional_sections(data, tmp_path):
    text_labels = np.array([f"class {v}" for v in data["test_labels"]])
    page = write_report(
        tmp_path / "r.html",
        before=data["before"],
        after=data["after"],
        test_before=data["test_before"],
        test_after=data["test_after"][:, :10],  # the refined width may differ
        test_labels=text_labels,
        class_names=None,
    ).read_text()
    assert "leave-one-out kNN-1" in page
    assert "<h2>Training</h2>" not in page and "<h2>Configuration</h2>" not in page
    assert "class 3" in page and "24 → 10 dims" in page
    assert len(_images(page)) == 3


def test_tiny_input_still_renders(tmp_path):
    Z = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.9, 0.2]])
    page = write_report(
        tmp_path / "r.html",
        before={"knn1_accuracy": float("nan")},
        after={"knn1_accuracy": 0.5},
        test_before=Z,
        test_after=Z,
        test_labels=np.array([0, 0, 1, 1]),
        class_names=["a", "b"],
    ).read_text()
    assert "n/a" in page


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"test_after": np.ones((5, 4))}, r"test_before has 240 rows but test_after has 5"),
        ({"class_names": ["a", "b"]}, r"label 2 \(row \d+\) has no entry in class_names"),
        ({"train_labels": None}, r"train_before, train_after and train_labels go together"),
        ({"examples": ["one"]}, r"examples has 1 texts but there are 240 test rows"),
        ({"test_labels": np.zeros(3)}, r"test_labels has 3 labels but test_before has 240 rows"),
    ],
)
def test_bad_input_raises_value_error(data, tmp_path, override, message):
    kwargs = {**data, **override}
    with pytest.raises(ValueError, match=message):
        write_report(tmp_path / "r.html", **kwargs)
    assert not (tmp_path / "r.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not on PATH (Debian: apt-get install -y chromium); "
    "the headless render check needs it",
)
def test_renders_in_headless_chromium(full_report, tmp_path):
    path, _ = full_report
    shot = tmp_path / "shot.png"
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text, charts and colours

    dom = subprocess.run(
        [*flags, "--dump-dom", path.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert dom.count("<img ") == 4 and "Per-class accuracy change" in dom
