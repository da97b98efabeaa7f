"""Every layer trains through train() on a real experiment: the baseline rows of the paper's tables
(LRA Transformer, Table 3 models, sCIFAR Transformer, the WT103 language models) and the
recurrent baselines on the default experiment. Each run is one fast_dev_run batch on fixture
data in the published format; train_checked asserts a finite metric and moved weights."""

from __future__ import annotations

import pytest
from conftest import train_checked
from test_data_cifar import write_cifar
from test_data_lra_text import write_aan, write_imdb, write_listops
from test_data_wt103 import write_wikitext

BASE = [
    "model.d_model=8",
    "model.n_layers=1",
    "trainer.accelerator=cpu",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "debug=fdr",
    "data.batch_size=4",
    "data.batch_size_eval=4",
]
# The WT103 fixture's vocabulary has about 40 words: three adaptive clusters fit in it.
ADAPTIVE = ["model.embedding.cutoffs=[10,20]", "model.embedding.div_val=2"]
LM = ["data.l_max=8", "data.batch_size=2", "data.batch_size_eval=2", "trainer.precision=32-true"]
S4S4FF = [f"model.layer.{name}.kernel.d_state=4" for name in ("s4_1", "s4_2")]

CASES = {
    # experiment: (fixture writer, extra overrides)
    # rsqrt warmup starts at lr 0 (as LRA's): no warmup, so that the one step moves the weights
    "lra_transformer/listops": (write_listops, ["scheduler.num_warmup_steps=0"]),
    "lra_transformer/aan": (
        write_aan,
        ["model.layer.attention.n_heads=2", "scheduler.num_warmup_steps=0"],
    ),
    "table3/transformer": (write_imdb, []),
    "table3/performer": (write_imdb, ["model.layer.attention.n_features=16"]),
    "table3/linear_attention": (write_imdb, []),
    "table3/s4": (write_imdb, ["model.layer.kernel.d_state=4"]),
    "cifar/transformer": (write_cifar, ["model.layer.attention.n_heads=2"]),
    "lm/transformer": (write_wikitext, [*LM, *ADAPTIVE, "model.layer.attention.n_heads=2"]),
    "lm/wt103": (write_wikitext, [*LM, *ADAPTIVE, *S4S4FF]),
    "lm_v1/wt103": (write_wikitext, [*LM, *ADAPTIVE, *S4S4FF]),
}


@pytest.mark.parametrize("experiment", sorted(CASES))
def test_one_training_step_through_train(compose_train, tmp_path, experiment):
    write, extra = CASES[experiment]
    data = tmp_path / "data"
    write(data / "wt103" if write is write_wikitext else data)
    cfg = compose_train(*BASE, f"experiment={experiment}", f"paths.data_dir={data}", *extra)
    train_checked(cfg)


@pytest.mark.parametrize("layer", ["lstm", "gru", "lssl", "ffn", "transformer", "s4s4ff"])
def test_every_layer_trains_on_the_default_experiment(compose_train, layer):
    extra = {"lssl": ["model.layer.d_state=4"], "s4s4ff": S4S4FF}.get(layer, [])
    cfg = compose_train(*BASE, f"model/layer={layer}", *extra)
    assert cfg.name == "mnist1d/s4"
    train_checked(cfg)
