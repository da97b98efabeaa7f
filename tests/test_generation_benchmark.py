"""benchmarks/generation.py: each model's row is well formed at a tiny shape on CPU, the recurrent
generators give the tokens that full forward passes give (so the benchmark times a correct
generator), and a missing official layer gives a skipped row with the reason."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import generation  # noqa: E402
import official  # noqa: E402

OFFICIAL = ROOT.parent / "shared" / "anchor" / "official-s4"
CPU = torch.device("cpu")
TINY = ["--device", "cpu", "--warmup", "2", "--batch", "2", "--steps", "8", "--nocache-steps", "4"]
TINY += ["--H", "16", "--n-layers", "2", "--N", "4", "--vocab", "32"]
ROW_KEYS = {"model", "step", "batch", "steps", "tokens_per_s", "ms_per_token", "peak_gb"}
ROW_KEYS |= {"device", "torch", "threads", "dtype", "status", "params"}


def spec_of(model: str, *options: str) -> dict:
    args = generation.parse_args([*TINY, "--models", model, *options])
    return generation.specs(args, CPU)[0], args


@pytest.mark.parametrize("model", ["s4", "s4d", "transformer", "transformer-nocache"])
def test_measure_gives_a_well_formed_row(model: str) -> None:
    spec, args = spec_of(model)
    row = generation.measure(spec, args)
    assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
    assert row["status"] == "ok" and row["batch"] == 2 and row["dtype"] == "fp32"
    assert row["tokens_per_s"] > 0 and row["ms_per_token"] > 0 and row["params"] > 0
    assert row["tokens_per_s"] == pytest.approx(2e3 / row["ms_per_token"], rel=1e-3)
    assert row["steps"] == (4 if model == "transformer-nocache" else 8)
    if model == "transformer-nocache":
        assert "4 of 8 steps" in row["note"]
    json.dumps(row)
    text = generation.render([row])
    assert row["device"] in text and "60x" in text


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="no official checkout beside the repo")
def test_measure_steps_the_official_layer() -> None:
    if official.official_problem(OFFICIAL):
        pytest.skip(official.official_problem(OFFICIAL))
    spec, args = spec_of("official-s4", "--official", str(OFFICIAL))
    row = generation.measure(spec, args)
    assert row["status"] == "ok" and row["tokens_per_s"] > 0
    assert row["official_step_mode"] == "dense"


@pytest.mark.parametrize("model", ["s4", "s4d", "transformer"])
def test_recurrent_greedy_equals_full_forward_greedy(model: str) -> None:
    spec = {"model": model, "H": 16, "n_layers": 2, "N": 8, "vocab": 32, "steps": 24}
    torch.manual_seed(0)
    task = generation.language_model(spec).double().eval()
    with torch.no_grad():  # a random model repeats one token: make its logits vary with context
        task.head.decoder.weight.mul_(20)
    task.setup_step()
    first = torch.tensor([0, 7, 19])
    stepped = generation.recurrent_greedy(task, first, spec["steps"])
    full = generation.full_forward_greedy(task, first, spec["steps"])
    assert stepped.shape == (3, 24)
    assert len(stepped.unique()) > 3  # not a constant sequence
    torch.testing.assert_close(stepped, full)


def test_missing_official_layer_gives_a_skipped_row(tmp_path) -> None:
    for options in ([], ["--official", str(tmp_path)]):
        spec, args = spec_of("official-s4", *options)
        assert spec["status"] == "skipped" and "official" in spec["reason"]
        row = next(generation.run_rows([spec], generation.measure, args, []))
        assert row["status"] == "skipped" and "device" in row
        assert "skipped" in generation.render([row])
    assert "no models/s4/s4.py" in spec["reason"]


def test_cuda_graph_needs_fixed_size_states() -> None:
    spec = {"model": "transformer", "H": 16, "n_layers": 1, "vocab": 32, "steps": 4}
    with pytest.raises(ValueError, match="KV cache"):
        generation.graphed_greedy(generation.language_model(spec).eval(), 2, CPU)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model", ["s4", "s4d"])
def test_cuda_graph_generation_equals_eager_steps(model: str) -> None:
    cuda = torch.device("cuda")
    spec = {"model": model, "H": 32, "n_layers": 2, "N": 8, "vocab": 64, "steps": 32}
    torch.manual_seed(0)
    task = generation.language_model(spec).to(cuda).eval()
    task.setup_step()
    first = torch.tensor([0, 5, 9], device=cuda)
    graphed = generation.graphed_greedy(task, 3, cuda)
    eager = generation.recurrent_greedy(task, first, spec["steps"])
    torch.testing.assert_close(graphed(first, spec["steps"]), eager)
    torch.testing.assert_close(graphed(first, spec["steps"]), eager)  # buffers reset per call
