"""Local mode on real MNIST test digits: accuracy, the shared pipeline, rows, failures, exits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digitcore.checkpoint import load_model
from digitcore.model import predict_probabilities
from digitcore.preprocess import preprocess
from predictor.__main__ import main
from testkit.nondigits import nondigit_uploads
from tests.predictor.conftest import label_of, truncated, write_digits


def test_default_model_predicts_mnist_files_with_their_labels(
    tmp_path, mnist_png_samples, default_model_path, run_json
):
    paths = write_digits(tmp_path / "digits", mnist_png_samples)
    status, rows, err = run_json([str(tmp_path / "digits"), "--model", str(default_model_path)])
    assert status == 0
    assert set(rows) == {str(p) for p in paths}
    correct = sum(row["digit"] == label_of(path) for path, row in rows.items())
    assert correct / len(rows) >= 0.98, f"{correct}/{len(rows)} correct"
    assert sum(row["is_digit"] for row in rows.values()) / len(rows) >= 0.98
    for row in rows.values():
        assert row["error"] is None
        assert row["confidence"] == max(row["probabilities"])
        assert sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert f"predicted {len(paths)} of {len(paths)} files, 0 failed" in err


def test_default_model_says_which_files_are_not_digits(tmp_path, default_model_path, capsys):
    samples = nondigit_uploads(40)
    folder = tmp_path / "drawings"
    folder.mkdir()
    for sample in samples:
        suffix = ".png" if sample.data.startswith(b"\x89PNG") else ".jpg"
        (folder / f"{sample.name}{suffix}").write_bytes(sample.data)
    status = main([str(folder), "--model", str(default_model_path), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and len(rows) == len(samples)
    assert sum(row["is_digit"] is False for row in rows) >= 0.75 * len(rows)
    main([str(folder), "--model", str(default_model_path)])
    table = capsys.readouterr().out.splitlines()
    assert sum("(does not look like a digit)" in line for line in table) >= 0.75 * len(rows)


def test_answers_are_the_shared_pipelines(tmp_path, mnist_png_samples, small_checkpoint, run_json):
    paths = write_digits(tmp_path, mnist_png_samples[:24])
    argv = [str(tmp_path), "--model", str(small_checkpoint), "--batch-size", "5", "--device", "cpu"]
    status, rows, _ = run_json(argv)
    assert status == 0
    model, _ = load_model(small_checkpoint, "cpu")
    prepared = preprocess([p.read_bytes() for p in paths])
    batch = torch.stack([item.tensor for item in prepared])
    expected = predict_probabilities(model, batch)
    for path, probs in zip(paths, expected.tolist(), strict=True):
        row = rows[str(path)]
        assert row["digit"] == int(np.argmax(probs))
        np.testing.assert_allclose(row["probabilities"], probs, atol=1e-6)


def test_table_rows_with_runners_up(tmp_path, mnist_png_samples, small_checkpoint, capsys):
    paths = write_digits(tmp_path, mnist_png_samples[:4])
    status = main([*map(str, paths), "--model", str(small_checkpoint), "--top-k", "3"])
    out, err = capsys.readouterr()
    assert status == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [str(p) for p in paths]
    for line in lines:
        fields = line.split()
        assert fields[1] in "0123456789"
        assert fields[2].endswith("%")
        assert fields[3] == "runners-up:"
        runners = line.split("runners-up: ")[1].split(", ")
        assert len(runners) == 2
        assert fields[1] not in {r.split()[0] for r in runners}
    assert "predicted 4 of 4 files, 0 failed" in err


def test_folder_with_a_corrupt_file(tmp_path, mnist_png_samples, small_checkpoint, capsys):
    folder = tmp_path / "scans"
    good = write_digits(folder, mnist_png_samples[:6]) + write_digits(
        folder / "nested", mnist_png_samples[6:10], start=6
    )
    (folder / "broken.png").write_bytes(truncated(mnist_png_samples[0][0]))
    (folder / "readme.txt").write_text("not an image, and not picked from a folder")
    status = main([str(folder), "--model", str(small_checkpoint)])
    out, err = capsys.readouterr()
    assert status == 1
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert set(rows) == {str(p) for p in good} | {str(folder / "broken.png")}
    assert "error: the PNG image is corrupt or truncated" in rows[str(folder / "broken.png")]
    for path in good:
        assert rows[str(path)].split()[1] in "0123456789"
    assert "predicted 10 of 11 files, 1 failed" in err
    assert f"{folder / 'broken.png'}: the PNG image is corrupt or truncated" in err


def test_each_unusable_argument_gets_a_row(tmp_path, mnist_png_samples, small_checkpoint, run_json):
    (good,) = write_digits(tmp_path, mnist_png_samples[:1])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [str(good), str(text), str(tmp_path / "missing.png"), str(tmp_path / "zz*.png")]
    status, rows, err = run_json([*argv, str(empty), "--model", str(small_checkpoint)])
    assert status == 1
    assert rows[str(good)]["error"] is None
    assert "not an image in a supported format" in rows[str(text)]["error"]
    assert "No such file or directory" in rows[str(tmp_path / "missing.png")]["error"]
    assert rows[str(tmp_path / "zz*.png")]["error"] == "no files match this pattern"
    assert rows[str(empty)]["error"] == "no image files in this folder"
    assert all(rows[p]["digit"] is None for p in argv[1:])
    assert "predicted 1 of 5 files, 4 failed" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--top-k", "0"], "--top-k must be between 1 and 10"),
        (["--url", "ftp://example"], "--url must start with http://"),
        (["--url", "http://127.0.0.1:9", "--model", "m.pth"], "--line-reader are for local"),
        (["--url", "http://127.0.0.1:9", "--line-reader", "l.pth"], "--line-reader are for local"),
        (["--figure", "out.gif"], "--figure must end in one of"),
        (["--batch-size", "0"], "--batch-size and --figure-limit must be at least 1"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2(extra, message, capsys):
    assert main(["digit.png", *extra]) == 2
    assert message in capsys.readouterr().err


def test_no_model_exits_3_and_says_why(tmp_path, capsys):
    assert main([str(tmp_path), "--model", str(tmp_path / "nope.pth")]) == 3
    assert f"checkpoint {tmp_path / 'nope.pth'}: file not found" in capsys.readouterr().err


def test_a_missing_line_reader_exits_3_and_says_why(tmp_path, default_model_path, capsys):
    missing = tmp_path / "lines.pth"
    argv = [str(tmp_path), "--read", "--model", str(default_model_path), "--line-reader"]
    assert main([*argv, str(missing)]) == 3
    assert f"line reader {missing}: cannot be read" in capsys.readouterr().err
