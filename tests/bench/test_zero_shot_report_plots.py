"""The zero-shot report's matplotlib plots on hand-written per-split results: mean lines and
min-max bands at the right heights, no curve drawn on top of another, labelled examples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench import zero_shot_report as report

K = report.K_VALUES  # 1, 2, 5, 10, 20


def _metrics(base: float) -> dict:
    curve = {str(k): base + 0.01 * i for i, k in enumerate(K)}
    return {
        "flat_hit_at_k": curve,
        "zero_shot_hit_at_k": {"-0": curve, "+seen": {k: v / 2 for k, v in curve.items()}},
    }


# Two splits; the hinge row and the main row have the SAME numbers (they must not hide
# each other), Chance lower.
RUNS = [
    {"results": {report.HINGE: _metrics(0.2), report.MAIN: _metrics(0.2), "Chance": _metrics(0)}},
    {"results": {report.HINGE: _metrics(0.4), report.MAIN: _metrics(0.4), "Chance": _metrics(0)}},
]


@pytest.fixture(scope="module")
def hit_axes():
    plt = report._matplotlib()
    fig = report.hit_at_k_figure(RUNS)
    yield fig.axes[: len(report.HIT_AT_K_PANELS)]
    plt.close(fig)


def _line(ax, label):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


def test_split_values_reads_each_split():
    assert report.split_values(RUNS, report.MAIN, "zero_shot_hit_at_k|-0|5") == pytest.approx(
        [0.22, 0.42]
    )
    assert report.split_values(RUNS, "Softmax", "flat_hit_at_k|1") == []


def test_the_mean_line_is_the_mean_over_splits_in_percent(hit_axes):
    flat, minus0, plus_seen = hit_axes
    # mean of 0.2 + 0.01 i and 0.4 + 0.01 i = 0.3 + 0.01 i
    np.testing.assert_allclose(_line(flat, report.MAIN).get_ydata(), [30, 31, 32, 33, 34])
    np.testing.assert_allclose(_line(minus0, report.HINGE).get_ydata(), [30, 31, 32, 33, 34])
    np.testing.assert_allclose(_line(plus_seen, report.MAIN).get_ydata(), [15, 15.5, 16, 16.5, 17])
    np.testing.assert_allclose(_line(flat, "Chance").get_ydata(), [0, 1, 2, 3, 4])


def test_the_band_spans_min_to_max_over_splits(hit_axes):
    flat = hit_axes[0]
    order = [m for m in report.PLOT_ROWS if m in RUNS[0]["results"]]
    band = flat.collections[order.index(report.MAIN)]
    y = band.get_paths()[0].vertices[:, 1]
    assert (y.min(), y.max()) == pytest.approx((20, 44))  # split 0 at k=1, split 1 at k=20


def test_equal_curves_do_not_hide_each_other(hit_axes):
    hinge, main = _line(hit_axes[1], report.HINGE), _line(hit_axes[1], report.MAIN)
    assert list(hinge.get_ydata()) == list(main.get_ydata())
    assert all(a != b for a, b in zip(hinge.get_xdata(), main.get_xdata(), strict=True))
    assert hinge.get_color() != main.get_color()
    assert hinge.get_marker() != main.get_marker()
    assert hinge.get_linestyle() != main.get_linestyle()
    styles = list(report.PLOT_STYLES.values())
    assert len({c for c, _, _ in styles}) == len({m for _, _, m in styles}) == len(styles)


def test_hit_at_k_png_is_written_small(tmp_path):
    report.plot_hit_at_k(RUNS, tmp_path / "hit.png")
    assert Image.open(tmp_path / "hit.png").size == (1500, 560)
    assert (tmp_path / "hit.png").stat().st_size < 1_000_000


def test_example_panels_label_the_true_and_the_seen_labels(tmp_path):
    Image.new("RGB", (20, 20), "red").save(tmp_path / "fox.png")
    rows = [
        {
            "image": "fox.png",
            "style": "google",
            "true": "fox",
            "top5": [["wolf", 0.5], ["fox", 0.25]],
            "top5_all": [["dog", 0.6, True], ["wolf", 0.5, False]],
        }
    ]
    images = report.example_images(rows, tmp_path)
    assert images == {"fox.png": tmp_path / "fox.png"}
    plt = report._matplotlib()
    fig = report.examples_figure(rows, images)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    plt.close(fig)
    assert "2. fox \u2713" in texts and "0.25" in texts
    assert "1. dog (seen)" in texts and "2. wolf" in texts
    assert titles[0] == "fox" and '"+seen": all labels' in titles
    report.plot_examples(rows, images, tmp_path / "examples.png")
    assert (tmp_path / "examples.png").stat().st_size < 1_000_000
    assert "+seen" in report.examples_caption(rows)


def test_missing_example_images_skip_the_plot(tmp_path, capsys):
    rows = [{"image": "images/none.png", "true": "x", "style": "s", "top5": [["x", 0.1]]}]
    assert report.example_images(rows, tmp_path) is None
    assert "images/none.png" in capsys.readouterr().err
