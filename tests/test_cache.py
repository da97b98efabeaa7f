"""Processed-data cache: a hit skips the build, a changed source or config rebuilds, concurrent
processes (DDP ranks set up at once) build an entry once."""

import multiprocessing
import time
from pathlib import Path

from s4lab.data.cache import cached


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


def _slow_build_in_process(cache_dir: str, log: str) -> None:
    def build():
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.5)
        return list(range(10))

    assert cached(build, Path(cache_dir), "shared", {}, []) == list(range(10))


def test_concurrent_processes_build_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_slow_build_in_process, args=(str(tmp_path / "c"), str(log)))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text() == "built\n"
