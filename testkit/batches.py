"""Many uploads through a real server's ``POST /predict/batch``, in requests it accepts.

Shared by the tests that score the evidence sets over HTTP and by the benchmarks that do the
same (``bench/nondigits.py``): the uploads go in requests of at most 16 files and 8 MiB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

CHUNK_FILES = 16
CHUNK_BYTES = 8 * 1024 * 1024  # under the service's default 10 MiB request limit


class HasData(Protocol):
    data: bytes
    name: str


def chunks(samples: Sequence[HasData]) -> list[list[HasData]]:
    """Consecutive groups of at most CHUNK_FILES files and CHUNK_BYTES bytes."""
    groups: list[list[HasData]] = [[]]
    for sample in samples:
        group = groups[-1]
        too_big = sum(len(s.data) for s in group) + len(sample.data) > CHUNK_BYTES
        if group and (len(group) == CHUNK_FILES or too_big):
            groups.append(group := [])
        group.append(sample)
    return groups


def batch_answers(url: str, samples: Sequence[HasData]) -> list[dict | None]:
    """Each sample's prediction JSON, or None where the service refused it (422: no digit).

    Any other status is an error: these are images the service must read.
    """
    found: list[dict | None] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for chunk in chunks(samples):
            files = [
                ("files", (f"{s.name}.bin", s.data, "application/octet-stream")) for s in chunk
            ]
            response = client.post("/predict/batch", files=files)
            response.raise_for_status()
            results = response.json()["results"]
            unexpected = [r for r in results if r["status"] not in (200, 422)]
            if unexpected:
                raise RuntimeError(f"unexpected answers: {unexpected}")
            found += [r["prediction"] if r["status"] == 200 else None for r in results]
    return found
