"""Sets drawn once and kept: reused for the same key, rebuilt for another or a damaged file."""

import pytest
import torch

from trainer.cache import cached


def counting_build(calls: list[int]):
    def build() -> dict:
        calls.append(1)
        return {"images": torch.full((2, 3), len(calls), dtype=torch.uint8), "kinds": ["a", "b"]}

    return build


def test_a_set_is_built_once_and_reused_for_the_same_key(tmp_path):
    calls: list[int] = []
    path = tmp_path / "set.pt"
    first = cached(path, {"version": 1}, counting_build(calls))
    again = cached(path, {"version": 1}, counting_build(calls))
    assert len(calls) == 1 and torch.equal(first["images"], again["images"])
    assert again["kinds"] == ["a", "b"]


def test_another_key_or_a_damaged_file_is_rebuilt(tmp_path):
    calls: list[int] = []
    path = tmp_path / "set.pt"
    cached(path, {"version": 1}, counting_build(calls))
    rebuilt = cached(path, {"version": 2}, counting_build(calls))
    assert len(calls) == 2 and int(rebuilt["images"][0, 0]) == 2
    path.write_bytes(b"not a torch file")
    assert int(cached(path, {"version": 2}, counting_build(calls))["images"][0, 0]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["set.pt"]


def test_a_failed_build_leaves_no_file(tmp_path):
    def failing() -> dict:
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError):
        cached(tmp_path / "set.pt", {"version": 1}, failing)
    assert list(tmp_path.iterdir()) == []
