"""The prediction figure: a real PNG, one 400x240 cell per image in a grid of up to 4 columns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from predictor.__main__ import main
from tests.predictor.conftest import write_digits


def open_png(path) -> Image.Image:
    with Image.open(path) as image:
        image.verify()
    image = Image.open(path)
    assert image.format == "PNG"
    return image.convert("RGB")


@pytest.mark.parametrize(
    ("count", "limit", "size"), [(1, 64, (400, 240)), (3, 64, (1200, 240)), (7, 5, (1600, 480))]
)
def test_figure_is_a_png_of_the_grid_size(
    count, limit, size, tmp_path, mnist_png_samples, small_checkpoint, capsys
):
    paths = write_digits(tmp_path / "in", mnist_png_samples[:count])
    out = tmp_path / "fig" / "out.png"
    argv = [*map(str, paths), "--model", str(small_checkpoint), "--figure", str(out)]
    assert main([*argv, "--figure-limit", str(limit)]) == 0
    err = capsys.readouterr().err
    assert f"figure written to {out}" in err
    assert (f"figure shows the first {limit} of {count}" in err) == (count > limit)
    image = open_png(out)
    assert image.size == size
    pixels = np.asarray(image.convert("L"))
    assert pixels.min() < 20 and pixels.max() > 235, "the digits (white on black) are drawn"
    assert [p.name for p in out.parent.iterdir()] == ["out.png"], "no temp file left behind"


def test_model_view_is_enlarged_with_nearest_neighbour(
    tmp_path, mnist_png_samples, small_checkpoint
):
    (path,) = write_digits(tmp_path, mnist_png_samples[:1])
    out = tmp_path / "one.png"
    assert main([str(path), "--model", str(small_checkpoint), "--figure", str(out)]) == 0
    right = np.asarray(open_png(out).convert("L"))[75:, 200:]  # below the titles
    ys, xs = np.nonzero(right < 30)  # the black square the 28x28 input is drawn on
    panel = right[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert 28 * 4 < panel.shape[0] < 240 and abs(panel.shape[0] - panel.shape[1]) <= 6
    assert len(np.unique(panel)) > 10, "the digit's gray levels are there"
    assert len(np.unique(panel, axis=0)) <= 28 + 4, "28 rows of pixels, each repeated"
    assert np.unique(panel, axis=1).shape[1] <= 28 + 4, "28 columns of pixels, each repeated"


def test_failed_files_only_means_no_figure(tmp_path, small_checkpoint, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out.png"
    assert main([str(bad), "--model", str(small_checkpoint), "--figure", str(out)]) == 1
    assert "no figure: no file was predicted" in capsys.readouterr().err
    assert not out.exists()


def test_show_without_a_display_says_so(
    tmp_path, mnist_png_samples, small_checkpoint, capsys, monkeypatch
):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    (path,) = write_digits(tmp_path, mnist_png_samples[:1])
    assert main([str(path), "--model", str(small_checkpoint), "--show"]) == 0
    assert "cannot show the figure: no display available" in capsys.readouterr().err
