"""Processed-data cache: a hit skips the build, a changed source or config rebuilds, and
prepare_cache (what prepare_data calls) builds an entry without loading an existing one."""

import torch

from s4lab.data.cache import cache_path, cached, prepare_cache


def test_hit_and_rebuild(tmp_path):
    source = tmp_path / "train.txt"
    source.write_text("a b c")
    builds = []

    def build():
        builds.append(1)
        return {"tokens": source.read_text().split()}

    def load(config):
        return cached(build, tmp_path / "cache", "toy", config, [source])

    assert load({"min_freq": 1}) == {"tokens": ["a", "b", "c"]}
    assert load({"min_freq": 1}) == {"tokens": ["a", "b", "c"]} and len(builds) == 1
    load({"min_freq": 2})  # another config: another entry
    assert len(builds) == 2
    source.write_text("a b d")  # same size, other content: the checksum changes
    assert load({"min_freq": 1}) == {"tokens": ["a", "b", "d"]} and len(builds) == 3
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_prepare_builds_once_and_setup_only_loads(tmp_path, monkeypatch):
    builds = []

    def build():
        builds.append(1)
        return list(range(10))

    path = prepare_cache(build, tmp_path, "shared", {"v": 1}, [])
    assert path == cache_path(tmp_path, "shared", {"v": 1}, []) and path.is_file()

    def no_load(*args, **kwargs):
        raise AssertionError("prepare_cache loaded an existing entry")

    monkeypatch.setattr(torch, "load", no_load)
    assert prepare_cache(build, tmp_path, "shared", {"v": 1}, []) == path  # exists: not loaded
    monkeypatch.undo()
    assert cached(build, tmp_path, "shared", {"v": 1}, []) == list(range(10))
    assert len(builds) == 1
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.tmp*"))
