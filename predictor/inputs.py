"""Turn the command line's files, folders and globs into one ordered list of files to predict.

Named files are taken whatever their extension (the pipeline says why one is not an image);
folders are walked recursively for image extensions; globs are expanded here, so quoted
patterns work the same on every shell. An argument that yields nothing becomes a failed row
with the reason, like an unreadable file.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from digitcore.formats import IMAGE_EXTENSIONS

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Entry:
    """One row of output: a file to predict, or an argument that could not give one."""

    path: str
    error: str | None = None


def expand(arguments: list[str]) -> list[Entry]:
    """Files in argument order (folders sorted within), each file once."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for argument in arguments:
        found = _expand_one(argument)
        if isinstance(found, str):
            entries.append(Entry(argument, found))
            continue
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                entries.append(Entry(path))
    return entries


def _expand_one(argument: str) -> list[str] | str:
    """The files ``argument`` names, or the reason it names none."""
    path = Path(argument)
    if path.is_dir():
        files = _walk(argument)
        return files or "no image files in this folder"
    if path.exists() or not GLOB_CHARS.intersection(argument):
        return [argument]
    files: list[str] = []
    for match in sorted(glob.glob(argument, recursive=True)):
        files.extend(_walk(match) if os.path.isdir(match) else [match])
    return files or "no files match this pattern"


def _walk(folder: str) -> list[str]:
    """Image files under ``folder``, recursively, in sorted order; hidden entries skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, name)
            for name in sorted(files)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        )
    return found
