"""Helpers for the predictor's tests: real MNIST test digits written as files, JSON runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predictor.__main__ import main


def write_digits(folder: Path, samples: list[tuple[bytes, int]], start: int = 0) -> list[Path]:
    """Write ``samples`` as ``folder/d<index>_label<label>.png``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (data, label) in enumerate(samples, start):
        path = folder / f"d{index:04d}_label{label}.png"
        path.write_bytes(data)
        paths.append(path)
    return paths


def label_of(path: str) -> int:
    return int(Path(path).stem.rsplit("label", 1)[1])


def truncated(data: bytes) -> bytes:
    """A real PNG cut in half: the header reads, the pixel data does not."""
    return data[: len(data) // 2]


@pytest.fixture
def run_json(capsys):
    """Run ``main(argv + ['--json'])`` in-process; returns (exit status, rows by path, stderr)."""

    def run(argv: list[str]) -> tuple[int, dict[str, dict], str]:
        status = main([*argv, "--json"])
        out, err = capsys.readouterr()
        rows = [json.loads(line) for line in out.splitlines()]
        by_path = {row["path"]: row for row in rows}
        assert len(by_path) == len(rows), "a file was reported twice"
        return status, by_path, err

    return run
