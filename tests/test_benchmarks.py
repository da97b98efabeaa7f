"""The benchmark scripts (benchmarks/): each measure function gives a well-formed row on CPU at a
tiny shape, the markdown names the device, a missing official layer or einops skips its rows
with the reason, the CPU path runs a row in a subprocess, and report.py reads table 3's runs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import layer_scaling  # noqa: E402
import layer_speed  # noqa: E402
import official  # noqa: E402
import rows  # noqa: E402
import table2_lssl  # noqa: E402
import table3_efficiency  # noqa: E402

OFFICIAL = ROOT.parent / "shared" / "anchor" / "official-s4"
ROW_KEYS = {"what", "L", "B", "precision", "ms_fwd_bwd", "peak_gb", "status", "device", "torch"}
CPU = torch.device("cpu")
TINY = ["--device", "cpu", "--warmup", "0", "--repeats", "1"]


def args(**options) -> argparse.Namespace:
    return argparse.Namespace(device="cpu", warmup=0, repeats=1, backend="auto", **options)


def check(row: dict) -> None:
    assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
    assert row["status"] == "ok", row.get("reason")
    assert row["ms_fwd_bwd"] > 0 and row["peak_gb"] >= 0
    assert "threads" in row and "backend" in row and "backend_used" in row
    json.dumps(row)  # a JSON line


@pytest.mark.parametrize(
    "what, precision",
    [("floor", "fp32"), ("s4", "fp32"), ("s4d", "bf16"), ("attention", "fp32")],
)
def test_layer_scaling_measures_a_row(what: str, precision: str) -> None:
    options = layer_scaling.parse_args([*TINY, "--H", "8", "--N", "4"])
    shape = {"L": 16, "B": 2, "H": 8, "precision": precision}
    spec = next(s for s in layer_scaling.specs(options, CPU) if s["what"] == what)
    row = layer_scaling.measure(spec | shape, options)
    check(row)
    if what in ("s4", "s4d"):
        assert row["backend"] == "auto" and row["backend_used"] == "naive"


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="no official checkout beside the repo")
def test_layer_scaling_measures_the_official_layer() -> None:
    if official.official_problem(OFFICIAL):
        pytest.skip(official.official_problem(OFFICIAL))
    options = layer_scaling.parse_args([*TINY, "--official", str(OFFICIAL)])
    spec = {"what": "official-s4d", "L": 16, "B": 1, "H": 8, "N": 4, "precision": "fp32"}
    row = layer_scaling.measure(spec | {"backend": "naive"}, options)
    check(row)
    assert row["backend_used"] == "naive" and row["cuda_extension"] is False


def test_bandwidth_bound() -> None:
    spec = {"what": "bandwidth", "L": 32, "B": 2, "H": 8, "precision": "fp32"}
    row = layer_scaling.bandwidth_row(spec, 1.0)
    assert row["bytes"] == 4 * 2 * 32 * 8 * 4  # x, y, dy, dx in fp32
    assert row["ms_fwd_bwd"] == pytest.approx(row["bytes"] / 1e9 * 1e3)
    skipped = layer_scaling.bandwidth_row(spec, None)
    assert skipped["status"] == "skipped" and "--bandwidth-gbs" in skipped["reason"]
    assert layer_scaling.datasheet_bandwidth_gbs("NVIDIA H200") == 4800
    assert layer_scaling.datasheet_bandwidth_gbs("NVIDIA H100 80GB HBM3") == 3350
    assert layer_scaling.datasheet_bandwidth_gbs("NVIDIA H100 PCIe") == 2000
    assert layer_scaling.datasheet_bandwidth_gbs("NVIDIA A100-SXM4-40GB") is None


def test_missing_official_layer_skips_its_rows(tmp_path, monkeypatch) -> None:
    assert "no --official PATH" in official.official_problem(None)
    assert "no models/s4/s4.py" in official.official_problem(tmp_path)
    fake = tmp_path / "official"
    (fake / "models" / "s4").mkdir(parents=True)
    (fake / "models" / "s4" / "s4.py").write_text("")
    monkeypatch.setitem(sys.modules, "einops", None)  # as if einops were not installed
    problem = official.official_problem(fake)
    assert "needs einops" in problem and "pip install einops" in problem and "skipped" in problem
    options = layer_scaling.parse_args(
        [*TINY, "--lengths", "64", "--layers", "official-s4", "--official", str(fake)]
    )
    specs = layer_scaling.specs(options, CPU)
    assert specs and all(s["status"] == "skipped" and s["reason"] == problem for s in specs)
    text = layer_scaling.render([s | {"device": "cpu", "torch": "x"} for s in specs])
    assert "skipped" in text and "needs einops" in text


def test_markdown_names_the_device(tmp_path) -> None:
    out, markdown = tmp_path / "rows.jsonl", tmp_path / "rows.md"
    writer = rows.RowWriter(out, markdown, layer_scaling.render, note="GPU rows: pending")
    base = {"L": 1024, "B": 2, "H": 8, "precision": "fp32", "device": "Fake GPU", "torch": "9.9"}
    measured = {"ms_fwd_bwd": 1.5, "peak_gb": 0.25, "status": "ok", "warmup": 3, "repeats": 10}
    writer.add(base | {"what": "floor"} | measured)
    writer.add(base | {"what": "attention", "status": "oom", "reason": "out of memory"})
    assert [json.loads(line)["what"] for line in out.read_text().splitlines()] == [
        "floor",
        "attention",
    ]
    text = markdown.read_text()
    assert text.startswith("## One layer, forward + backward: Fake GPU, torch 9.9")
    assert "| 1,024 (2) | 1.50 | oom |" in text and "oom: out of memory" in text
    assert "mean of 10 steps after 3 warm-up steps." in text and "GPU rows: pending" in text


def test_layer_speed_measures_a_row() -> None:
    spec = {"what": "block", "mode": "s4d", "L": 16, "B": 2, "H": 8, "N": 4, "precision": "fp32"}
    check(layer_speed.measure(spec, args()))


def test_table2_measures_both_layers() -> None:
    shape = {"H": 8, "L": 16, "B": 1, "precision": "fp32"}
    lssl = table2_lssl.measure(shape | {"what": "lssl", "N": 8}, args())
    s4 = table2_lssl.measure(shape | {"what": "s4", "N": 2}, args())
    for row in (lssl, s4):
        check(row)
    assert lssl["backend_used"] is None and s4["backend_used"] == "naive"
    text = table2_lssl.render([lssl | {"H": 128}, s4 | {"H": 128}])
    assert lssl["device"] in text
    assert "| 128 | 128 / 32 |" in text and "1.9x" in text and "42x" in text


@pytest.mark.parametrize(
    "what, precision, small", [("transformer", "bf16", False), ("s4", "fp32", True)]
)
def test_table3_measures_a_model(what: str, precision: str, small: bool) -> None:
    # small: the primer's narrow model (full-width S4 takes ~13 s per layer to build on CPU)
    spec = {"what": what, "L": 16, "B": 1, "precision": precision, "primer": small}
    row = table3_efficiency.measure(spec, args())
    check(row)
    assert row["n_layers"] == (1 if small else 4) and row["params"] > 0


def test_table3_report_dir_is_read_by_report(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
    report = importlib.util.module_from_spec(spec)
    sys.modules["report"] = report
    spec.loader.exec_module(report)
    measured = [  # rows as the benchmark writes them: the Transformer 2x slower than S4
        {"what": what, "L": L, "B": 1, "precision": "fp32", "status": "ok"}
        | {"ms_fwd_bwd": ms * L / 1024, "peak_gb": gb, "device": "cpu", "torch": "x"}
        for L in (1024, 4096)
        for what, ms, gb in (("transformer", 2.0, 1.0), ("s4", 1.0, 0.5))
    ]
    table3_efficiency.write_report_dir(tmp_path / "runs", measured, batch=1)
    assert report.main(["--table", "efficiency", "--runs", str(tmp_path / "runs" / "fp32"),
                        "--out", str(tmp_path / "results")]) == 0  # fmt: skip
    text = (tmp_path / "results" / "efficiency.md").read_text()
    assert "| S4 | speed vs Transformer at L=1024 (x) | 1.58 | 2.00 (n=1) |" in text
    assert "| Performer |" in text and "not run" in text


def test_cpu_rows_run_in_a_subprocess(tmp_path) -> None:
    out, markdown = tmp_path / "floor.jsonl", tmp_path / "floor.md"
    options = [*TINY, "--threads", "1", "--layers", "floor", "--H", "8", "--tokens", "64"]
    options += ["--lengths", "32", "--out", str(out), "--markdown", str(markdown)]
    floor = [r for r in layer_scaling.main(options) if r["what"] == "floor"]
    assert len(floor) == 1
    check(floor[0])
    assert floor[0]["threads"] == 1
    assert json.loads(out.read_text().splitlines()[-1]) == floor[0]
    assert floor[0]["device"] in markdown.read_text()
