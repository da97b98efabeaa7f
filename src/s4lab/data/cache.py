"""On-disk cache of processed datasets, keyed by the processing config and the sources' checksums.

A second run with the same config and unchanged source files loads the cached tensors; any
change to either (an edited file, another vocabulary threshold) builds a new entry.
"""

from __future__ import annotations

import fcntl
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


def cached(
    build: Callable[[], Any],
    cache_dir: Path,
    name: str,
    config: dict[str, Any],
    sources: Iterable[Path],
) -> Any:
    """Return `build()`, loading it from `cache_dir/name-<key>.pt` when that entry exists.

    One process builds an entry while the others (DDP ranks set up at once) wait on a file lock
    and then load it. The entry is written to a temporary file and renamed, so a crash never
    leaves a torn cache.
    """
    path = Path(cache_dir) / f"{name}-{cache_key(config, sources)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():  # built by another process while this one waited
            return torch.load(path, weights_only=False)
        obj = build()
        tmp = path.with_suffix(f".tmp-{socket.gethostname()}-{os.getpid()}")
        torch.save(obj, tmp)
        tmp.replace(path)
    return obj
