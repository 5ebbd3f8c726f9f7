"""The installed ``mnist-predict`` console script, run as users run it (a real process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.predictor.conftest import truncated, write_digits


def test_console_script_with_glob_json_and_progress(tmp_path, mnist_png_samples, small_checkpoint):
    script = shutil.which("mnist-predict", path=str(Path(sys.executable).parent))
    assert script, "the console script is installed with the project (pip install -e .)"
    paths = write_digits(tmp_path / "a", mnist_png_samples[:25])
    (tmp_path / "a" / "cut.png").write_bytes(truncated(mnist_png_samples[0][0]))
    argv = [script, "--model", str(small_checkpoint), "--json", "--progress", "--top-k", "2"]
    result = subprocess.run(
        [*argv, str(tmp_path / "a" / "*.png")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(row["path"] for row in rows) == sorted(
        [str(p) for p in paths] + [str(tmp_path / "a" / "cut.png")]
    )
    for row in rows:
        if row["path"].endswith("cut.png"):
            assert row["digit"] is None and "corrupt or truncated" in row["error"]
        else:
            first, second = row["top_k"]
            assert first == {"digit": row["digit"], "confidence": row["confidence"]}
            assert first["confidence"] >= second["confidence"]
    assert "26/26" in result.stderr, "the progress bar ran to the end on stderr"
    assert "predicted 25 of 26 files, 1 failed" in result.stderr


def test_remote_mode_starts_without_torch():
    code = "import sys, predictor.__main__; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
