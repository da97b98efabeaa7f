"""On-disk cache of processed datasets, keyed by the processing config and the sources' checksums.

A second run with the same config and unchanged source files loads the cached tensors; any
change to either (an edited file, another vocabulary threshold) builds a new entry.
Datamodules build entries in `prepare_data()`, which Lightning runs on one process per node
before the others call `setup()`, so no locking is needed. An entry is written to a temporary
file and renamed, so a crash never leaves a torn cache, and two nodes writing the same entry on
a shared file system each rename a complete file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch


def file_checksum(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(config: dict[str, Any], sources: Iterable[Path]) -> str:
    """Hex key from the JSON of `config` and each source file's name and checksum."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in sorted(Path(p) for p in sources):
        h.update(f"{path.name}:{file_checksum(path)}".encode())
    return h.hexdigest()[:16]


def cache_path(cache_dir: Path, name: str, config: dict[str, Any], sources: Iterable[Path]) -> Path:
    """`cache_dir/name-<key>.pt`, the entry for this config and these source files."""
    return Path(cache_dir) / f"{name}-{cache_key(config, sources)}.pt"


def _save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{socket.gethostname()}-{os.getpid()}")
    torch.save(obj, tmp)
    tmp.replace(path)


def prepare_cache(
    build: Callable[[], Any],
    cache_dir: Path,
    name: str,
    config: dict[str, Any],
    sources: Iterable[Path],
) -> Path:
    """Build and save the entry unless it exists (it is not loaded): for `prepare_data()`."""
    path = cache_path(cache_dir, name, config, sources)
    if not path.exists():
        _save(build(), path)
    return path


def cached(
    build: Callable[[], Any],
    cache_dir: Path,
    name: str,
    config: dict[str, Any],
    sources: Iterable[Path],
) -> Any:
    """Load the entry from `cache_dir/name-<key>.pt`, building and saving it first if missing."""
    path = cache_path(cache_dir, name, config, sources)
    if path.exists():
        return torch.load(path, weights_only=False)
    obj = build()
    _save(obj, path)
    return obj
