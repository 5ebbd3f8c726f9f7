"""Training sets drawn once and kept beside the data, rebuilt whenever what made them changed.

The non-digits (:mod:`trainer.outliers`) and the number reader's runs
(:mod:`trainer.number_pieces`) take a minute to draw; retraining reuses them. A stored set
carries the key it was built for (the code's version, the digits it came from), is used only
when that key matches, and is replaced atomically, so a crash never leaves a partial file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from digitcore.atomic import atomic_write

log = logging.getLogger("trainer.cache")


def cached(path: Path, key: dict[str, Any], build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The tensors stored at ``path`` if they were built for ``key``; otherwise ``build()``'s,
    stored there. A foreign or damaged file is rebuilt, never trusted."""
    if path.is_file():
        try:
            stored = torch.load(path, weights_only=True)
        except Exception as exc:
            log.warning("%s: unreadable (%s); rebuilding", path, exc)
        else:
            if isinstance(stored, dict) and stored.get("key") == key:
                return stored["content"]
            log.info("%s: built by other code or from other digits; rebuilding", path)
    content = build()
    with atomic_write(path) as handle:
        torch.save({"key": key, "content": content}, handle)
    return content
