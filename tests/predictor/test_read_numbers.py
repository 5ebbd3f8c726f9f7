"""``mnist-predict --read``: whole numbers read here and through a running service alike."""

from __future__ import annotations

import re

import pytest

from predictor.__main__ import main
from testkit.numbers import generate
from testkit.servers import serve


@pytest.fixture(scope="module")
def number_files(tmp_path_factory, mnist_test):
    images, labels = (t.numpy() for t in mnist_test)
    folder = tmp_path_factory.mktemp("numbers")
    paths = {}
    for sample in generate("apart", images, labels, 8):
        path = folder / f"{sample.name}.png"
        path.write_bytes(sample.data)
        paths[str(path)] = sample.number
    (folder / "notes.txt").write_bytes(b"not a picture")
    return folder, paths


def test_read_gives_the_number_and_its_digits_per_file(number_files, default_model_path, run_json):
    folder, numbers = number_files
    argv = ["--read", "--model", str(default_model_path), str(folder), str(folder / "notes.txt")]
    status, rows, err = run_json(argv)
    assert status == 1  # the text file failed
    assert "not an image" in rows[str(folder / "notes.txt")]["error"]
    right = 0
    for path, number in numbers.items():
        row = rows[path]
        assert row["error"] is None and row["number"] == "".join(
            str(d["digit"]) for d in row["digits"]
        )
        assert all(len(d["box"]) == 4 and 0 <= d["confidence"] <= 1 for d in row["digits"])
        right += row["number"] == number
    assert right >= len(numbers) - 1
    assert f"predicted {len(numbers)} of {len(numbers) + 1} files, 1 failed" in err


def test_read_through_the_service_agrees_with_local(
    number_files, default_model_path, default_line_reader_path, run_json, tmp_path
):
    folder, _ = number_files
    inputs = [str(folder), str(folder / "notes.txt")]
    model = ["--model", str(default_model_path), "--line-reader", str(default_line_reader_path)]
    _, local, _ = run_json(["--read", *model, *inputs])
    with serve(
        tmp_path,
        model_path=str(default_model_path),
        line_reader_path=str(default_line_reader_path),
        device="cpu",
    ) as server:
        _, remote, _ = run_json(["--read", "--url", server.url, *inputs])
    assert remote.keys() == local.keys()
    for path, here in local.items():
        assert remote[path].get("number") == here.get("number"), path
        if here["error"] is None:
            assert [d["box"] for d in remote[path]["digits"]] == [d["box"] for d in here["digits"]]


def test_read_table_and_usage_errors(number_files, default_model_path, capsys):
    path = next(iter(number_files[1]))
    assert main(["--read", "--model", str(default_model_path), path]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(rf"{re.escape(path)}\s+\d+\s+\d [\d.]+%(, \d [\d.]+%)*", line), line
    assert main(["--read", "--top-k", "3", path]) == 2
    assert "not with --read" in capsys.readouterr().err
