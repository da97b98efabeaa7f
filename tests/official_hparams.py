"""Official S4 hyperparameters of every experiment we reproduce, transcribed from state-spaces/s4.

Each entry names one code generation and the one official file it follows (path@commit), and
holds the values that file resolves to through its defaults (pipeline, model, layer, scheduler,
loader, trainer). Values are transcribed from the stored files, never copied prose; commits:
    a0c724a  first stored commit, ICLR-era content that the v1 tag (cfb6a06) still carries
    cfb6a06  tag v1 (ICLR 2022)
    d589d98  v3-era content that v3.0.0 still carries
    ab287c6  tag v3.0.0 (ab287c63f4938a76d06a6b6868ee4a7163b50b05)
    d27bdf9  later revision of the v3 Path-X recipe (moved to lra/old/v3-s4-pathx.yaml at HEAD)
    643a518  model/s4.yaml content unchanged from v2 to HEAD
    1eb1007  model/layer/s4.yaml at HEAD (v4 defaults: dt_transform softplus, final_act glu)
    43f5b0c  HEAD-era cifar/s4-cifar.yaml
SSM optimizer groups are {A, B, C, dt} (P goes with A); None means the optimizer's global value.
How each generation reads its `lr` / `wd` options (the rule functions below):
    v1  model/layer/s4.yaml@a0c724a, ss/kernel.py@a0c724a: dt, A, B at lr (1e-3), weight decay 0;
        C at the global lr and weight decay.
    v3  ss/kernel.py@ab287c6 `register`: dt, A, B (P) get weight decay 0 and the lr of the dict
        entry or of the scalar (None: global lr); C is a plain parameter (global lr and wd).
    v4  kernels/kernel.py@43f5b0c, kernels/ssm.py: a scalar lr applies to dt, A, B and C, a dict
        to the groups it names; a scalar wd applies to dt, A, B; C keeps the global wd.
Keys that an experiment cannot match are listed in `not_checked` with the reason, and the
experiment's header says the same.
"""

from __future__ import annotations

from typing import Any

GROUPS = ("A", "B", "C", "dt")

# Keys every official entry either gives a value for or lists in `not_checked`.
KEYS = (
    "d_model",
    "n_layers",
    "d_state",
    "n_ssm",
    "dropout",
    "layer_dropout",
    "lr",
    "weight_decay",
    "ssm_lr",
    "ssm_wd",
    "batch_size",
    "max_epochs",
    "scheduler",
    "norm",
    "prenorm",
    "bidirectional",
    "pool",
    "dt_transform",
    "seed",
    "init",
    "dt_min",
    "dt_max",
    "activation",
    "final_act",
)


def v1_rule(lr: float = 0.001) -> dict[str, dict[str, float | None]]:
    """v1: dt, A, B at `lr` without weight decay; C at the global lr and weight decay."""
    return {
        "ssm_lr": {"A": lr, "B": lr, "C": None, "dt": lr},
        "ssm_wd": {"A": 0.0, "B": 0.0, "C": None, "dt": 0.0},
    }


def v3_rule(lr: float | dict[str, float | None]) -> dict[str, dict[str, float | None]]:
    """v3: dt, A, B at the scalar or their dict entry, weight decay 0; C global."""
    lrs = lr if isinstance(lr, dict) else {"A": lr, "B": lr, "dt": lr}
    return {
        "ssm_lr": {g: None if g == "C" else lrs.get(g) for g in GROUPS},
        "ssm_wd": {"A": 0.0, "B": 0.0, "C": None, "dt": 0.0},
    }


def v4_rule(
    lr: float | dict[str, float | None], wd: float | dict[str, float | None] = 0.0
) -> dict[str, dict[str, float | None]]:
    """v4 (HEAD): scalar lr for dt, A, B, C, dict for the named groups; scalar wd for dt, A, B."""
    lrs = lr if isinstance(lr, dict) else dict.fromkeys(GROUPS, lr)
    wds = wd if isinstance(wd, dict) else {"A": wd, "B": wd, "dt": wd}
    return {
        "ssm_lr": {g: lrs.get(g) for g in GROUPS},
        "ssm_wd": {g: wds.get(g) for g in GROUPS},
    }


def cosine(warmup: int, total: int) -> dict[str, Any]:
    return {"name": "cosine", "warmup": warmup, "total": total}


def plateau(patience: int, factor: float = 0.2) -> dict[str, Any]:
    return {"name": "plateau", "patience": patience, "factor": factor}


CONSTANT = {"name": "constant"}

# Resolved official defaults of each generation, before the experiment file's own values.
# v1: model/s4.yaml, model/layer/s4.yaml, optimizer/adamw.yaml, loader/torch.yaml @a0c724a;
# scheduler/plateau.yaml (factor 0.2, patience 20) is not in our index: official_s4.md §4.3 and
# configs/scheduler/plateau.yaml; config.yaml train.seed 0 (stored version 43f5b0c).
V1 = {
    "d_model": 256,
    "n_layers": 4,
    "norm": "layer",
    "prenorm": False,
    "dropout": 0.2,  # the layer's dropout is ${..dropout}: the model's
    "d_state": 64,
    "init": "legs",
    "dt_min": 0.001,
    "dt_max": 0.1,
    "dt_transform": "exp",  # dt = exp(log_dt)
    "real_transform": "none",  # Re Λ is a raw parameter (w), no transform
    "rank": 1,
    "B_clip": None,
    "bidirectional": False,  # the v1 layer has no bidirectional option
    "activation": "gelu",
    "final_act": "linear",  # postact: null, GELU then the output linear
    "lr": 0.001,
    "weight_decay": 0.0,
    "batch_size": 50,
    "seed": 0,
    **v1_rule(0.001),
}
V1_NOT_CHECKED = {
    "n_ssm": "v1 shares one Λ over all H channels but keeps B and P per channel; our n_ssm "
    "ties (Λ, P, B), so we use n_ssm = H",
}
# The forecasting experiments share our recipe for Tables 13 and 14 (see their headers).
FORECAST_NOT_CHECKED = V1_NOT_CHECKED | {
    "max_epochs": "ours: 2 epochs (official 10), the shared recipe that reproduces ETTh1",
}

# v3: model/s4.yaml@643a518, model/layer/s4.yaml@ab287c6, optimizer/adamw.yaml, loader/default.yaml,
# scheduler/cosine_warmup.yaml (warmup 1000, total 40000) @a0c724a..ab287c6; config.yaml seed 0.
V3 = {
    "d_model": 256,
    "n_layers": 4,
    "norm": "layer",
    "prenorm": False,
    "dropout": 0.0,
    "d_state": 64,
    "n_ssm": 1,
    "init": "legs",
    "dt_min": 0.001,
    "dt_max": 0.1,
    "dt_transform": "exp",
    "real_transform": "exp",
    "real_tolerance": 0.001,
    "B_clip": None,
    "rank": 1,
    "deterministic": False,
    "bidirectional": False,
    "activation": "gelu",
    "final_act": "glu",
    "lr": 0.001,
    "weight_decay": 0.0,
    "batch_size": 50,
    "seed": 0,
    **v3_rule({"dt": 0.001, "A": 0.001, "B": 0.001}),
}

# v4 (HEAD): model/s4.yaml@643a518, model/layer/s4.yaml@1eb1007 (dt_transform softplus,
# lr {dt, A, B: 0.001}, wd 0.0); kernels/ssm.py clamps Re Λ at 1e-4 and clips Im B at 2.
V4 = V3 | {
    "dt_transform": "softplus",
    "real_tolerance": 0.0001,
    "B_clip": 2.0,
    **v4_rule({"dt": 0.001, "A": 0.001, "B": 0.001}, 0.0),
}


def entry(
    generation: str,
    file: str,
    defaults: dict[str, Any],
    not_checked: dict[str, str] | None = None,
    **values: Any,
) -> dict[str, Any]:
    """One experiment: its generation, official file and resolved values (defaults | file)."""
    resolved = defaults | values
    resolved.setdefault("layer_dropout", resolved["dropout"])  # layers take the model's dropout
    not_checked = dict(not_checked or {})
    for key in not_checked:
        resolved.pop(key, None)
    return {"generation": generation, "file": file, "values": resolved, "not_checked": not_checked}


LRA_V3 = "configs/experiment/lra/"
# fmt: off
OFFICIAL: dict[str, dict[str, Any]] = {
    # v3 LRA: the updated S4 of the S4 paper v3 Table 4 (v3.0.0 configs).
    "lra/listops": entry(
        "v3", LRA_V3 + "s4-lra-listops.yaml@ab287c6", V3,
        d_model=128, n_layers=8, norm="batch", prenorm=False, dropout=0.0, n_ssm=128,
        bidirectional=True, **v3_rule({"dt": None, "A": 0.001, "B": 0.001}), lr=0.01,
        weight_decay=0.05, batch_size=50, max_epochs=40, scheduler=cosine(1000, 80000),
        pool="mean", seed=2222,
    ),
    "lra/imdb": entry(
        "v3", LRA_V3 + "s4-lra-imdb.yaml@ab287c6", V3,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, n_ssm=256,
        bidirectional=True, **v3_rule({"dt": None, "A": 0.001, "B": 0.001}), lr=0.01,
        weight_decay=0.05, batch_size=16, max_epochs=32, scheduler=cosine(1000, 50000),
        pool="mean", seed=2222,
    ),
    "lra/aan": entry(
        "v3", LRA_V3 + "s4-lra-aan.yaml@d589d98", V3,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, n_ssm=256,
        bidirectional=True, **v3_rule({"dt": None, "A": 0.001, "B": 0.001}), lr=0.01,
        weight_decay=0.05, batch_size=64, max_epochs=20, scheduler=cosine(2500, 50000),
        pool="mean", seed=2222,  # pipeline/aan.yaml (not in our index): retrieval, mode pool
    ),
    "lra/image": entry(
        "v3", LRA_V3 + "s4-lra-cifar.yaml@ab287c6", V3,
        d_model=512, n_layers=6, norm="layer", prenorm=False, dropout=0.1, n_ssm=2,
        bidirectional=True, **v3_rule({"dt": None, "A": 0.001, "B": 0.001}), lr=0.01,
        weight_decay=0.05, batch_size=50, max_epochs=200, scheduler=cosine(1000, 200000),
        pool="mean", seed=2222,
    ),
    "lra/pathfinder": entry(
        "v3", LRA_V3 + "s4-lra-pathfinder.yaml@ab287c6", V3,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, n_ssm=256,
        bidirectional=True, **v3_rule(0.001), lr=0.004, weight_decay=0.03, batch_size=64,
        max_epochs=200, scheduler=cosine(2500, 500000), pool="last", seed=2222,
    ),
    "lra/pathx": entry(
        "v3", LRA_V3 + "s4-lra-pathx.yaml@d27bdf9", V3,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, n_ssm=256,
        bidirectional=True, dt_min=0.0001, dt_max=0.1, **v3_rule(0.0005), lr=0.001,
        weight_decay=0.05, batch_size=16, max_epochs=50, scheduler=cosine(50000, 500000),
        pool="mean", seed=2222,  # pipeline/pathx.yaml (not in our index): mode pool
    ),
    # v1 LRA: the original S4 of the S4 paper v3 Table 10 (ICLR configs, plateau schedule).
    "lra_v1/listops": entry(
        "v1", LRA_V3 + "old/s4-lra-listops.yaml@d589d98", V1, V1_NOT_CHECKED,
        d_model=128, n_layers=6, norm="batch", prenorm=False, dropout=0.0, lr=0.01,
        weight_decay=0.01, batch_size=50, max_epochs=50, scheduler=plateau(5), pool="mean",
        seed=1112,
    ),
    "lra_v1/imdb": entry(
        "v1", "configs/experiment/s4-lra-imdb.yaml@a0c724a", V1, V1_NOT_CHECKED,
        d_model=128, n_layers=4, norm="batch", prenorm=True, dropout=0.0, lr=0.01,
        weight_decay=0.0, batch_size=50, max_epochs=40, scheduler=plateau(10), pool="last",
        seed=1112,  # pipeline/imdb.yaml@a0c724a: decoder mode last, use_lengths
    ),
    "lra_v1/aan": entry(
        "v1", LRA_V3 + "old/s4-lra-aan.yaml@ab287c6", V1, V1_NOT_CHECKED,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, lr=0.002,
        weight_decay=0.0, batch_size=64, max_epochs=25, scheduler=plateau(20), pool="mean",
        seed=1112,
    ),
    "lra_v1/image": entry(
        "v1", "configs/experiment/s4-lra-cifar.yaml@a0c724a", V1, V1_NOT_CHECKED,
        d_model=512, n_layers=6, norm="batch", prenorm=False, dropout=0.2, lr=0.004,
        weight_decay=0.01, batch_size=50, max_epochs=100, scheduler=plateau(10), pool="mean",
        seed=1112,
    ),
    "lra_v1/pathfinder": entry(
        "v1", "configs/experiment/s4-lra-pathfinder.yaml@a0c724a", V1, V1_NOT_CHECKED,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.1, lr=0.004,
        weight_decay=0.0, batch_size=100, max_epochs=200, scheduler=plateau(10), pool="last",
        seed=1112,
    ),
    # The v1 Path-X file is not in our index: values from official_s4.md §4.3, seed as every
    # other v1 LRA file.
    "lra_v1/pathx": entry(
        "v1", "configs/experiment/s4-lra-pathx.yaml@cfb6a06", V1, V1_NOT_CHECKED,
        d_model=256, n_layers=6, norm="batch", prenorm=True, dropout=0.0, lr=0.0005,
        weight_decay=0.0, batch_size=32, max_epochs=100, scheduler=plateau(40), pool="mean",
        seed=1112,
    ),
    # Sequential CIFAR (color): v4 HEAD recipe and the v1 paper run.
    "cifar/s4": entry(
        "v4", "configs/experiment/cifar/s4-cifar.yaml@43f5b0c", V4,
        d_model=512, n_layers=6, norm="layer", prenorm=False, dropout=0.1, n_ssm=2,
        bidirectional=True, lr=0.01, weight_decay=0.05, batch_size=50, max_epochs=200,
        scheduler=cosine(1000, 200000), pool="mean", seed=2222,
    ),
    "cifar/s4_v1": entry(
        "v1", "configs/experiment/s4-cifar.yaml@a0c724a", V1, V1_NOT_CHECKED,
        d_model=1024, n_layers=6, norm="layer", prenorm=False, dropout=0.25, lr=0.01,
        weight_decay=0.01, batch_size=50, max_epochs=200, scheduler=plateau(20), pool="mean",
        seed=1112,
    ),
    # Speech Commands: SC10 raw as in the v1 paper, SC35 as in the v3 repo.
    "sc/sc10_raw": entry(
        "v1", "configs/experiment/s4-sc.yaml@a0c724a", V1, V1_NOT_CHECKED,
        d_model=128, n_layers=6, norm="batch", prenorm=True, dropout=0.1, lr=0.01,
        weight_decay=0.0, batch_size=20, max_epochs=200, scheduler=plateau(20), pool="mean",
        seed=1112, eval_rates=[1, 2],  # pipeline/sc.yaml: eval_resolutions [1, 2]
    ),
    "sc/sc35_raw": entry(
        "v3", "configs/experiment/sc/s4-sc.yaml@d589d98", V3,
        d_model=128, n_layers=6, norm="batch", prenorm=True, dropout=0.0, n_ssm=2,
        bidirectional=True, lr=0.01, weight_decay=0.05, batch_size=16, max_epochs=40,
        scheduler=cosine(1000, 200000), pool="mean", seed=2222, eval_rates=[1, 2],
    ),
    # WikiText-103: 16 blocks of [S4, S4, FFN] (model/layer/s4s4ff.yaml@ab287c6); the S4 layers'
    # values are checked (model.layer.s4_1; s4_2 is the same file entry).
    "lm/wt103": entry(
        "v3", "configs/experiment/lm/s4-wt103.yaml@d589d98", V3,
        d_model=1024, n_layers=16, norm="layer", prenorm=True, dropout=0.25,
        **v3_rule(0.0005), lr=0.0005, weight_decay=0.1, batch_size=1, max_epochs=1000,
        scheduler=cosine(1000, 800000), pool=None, seed=1111,
    ),
    "lm_v1/wt103": entry(
        "v1", "configs/experiment/s4-wt103.yaml@2bb0858", V1, V1_NOT_CHECKED,
        d_model=1024, n_layers=16, norm="layer", prenorm=True, dropout=0.25,
        final_act="glu",  # model/s4_wt103.yaml@a0c724a: postact glu
        **v1_rule(0.0005), lr=0.0005, weight_decay=0.1, batch_size=8, max_epochs=1000,
        scheduler=cosine(1000, 800000), pool=None, seed=1111,
    ),
    # Informer forecasting (v1; the paper's Tables 13 and 14).
    "forecasting/etth1": entry(
        "v1", "configs/experiment/s4-informer-etth.yaml@cfb6a06", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/etth1_multivariate": entry(
        "v1", "configs/experiment/s4-informer-etth.yaml@cfb6a06", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/etth2": entry(
        "v1", "configs/experiment/s4-informer-etth.yaml@cfb6a06", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/ettm1": entry(
        "v1", "configs/experiment/s4-informer-ettm.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/etth2_multivariate": entry(
        "v1", "configs/experiment/s4-informer-etth.yaml@cfb6a06", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/ettm1_multivariate": entry(
        "v1", "configs/experiment/s4-informer-ettm.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/weather": entry(
        "v1", "configs/experiment/s4-informer-weather.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/weather_multivariate": entry(
        "v1", "configs/experiment/s4-informer-weather.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/ecl": entry(
        "v1", "configs/experiment/s4-informer-ecl.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    "forecasting/ecl_multivariate": entry(
        "v1", "configs/experiment/s4-informer-ecl.yaml@a0c724a", V1, FORECAST_NOT_CHECKED,
        d_model=128, n_layers=2, dropout=0.25, lr=0.01, weight_decay=0.0, batch_size=50,
        max_epochs=10, scheduler=plateau(20), pool=None,
    ),
    # Copying (v3): the official run with the deterministic init; dt = n_layers / l_memorize;
    # its `measure: fourier` is our init fout.
    "synthetic/copying": entry(
        "v3", "configs/experiment/synthetic/s4-copying.yaml@d589d98", V3,
        d_model=64, n_layers=4, prenorm=True, dropout=0.0, d_state=256, rank=2, init="fout",
        deterministic=True, dt_min=4 / 1024, dt_max=4 / 1024, **v3_rule(0.0001), lr=0.001,
        weight_decay=0.0, batch_size=8, max_epochs=1000, scheduler=CONSTANT, pool=None,
        seed=1112,
    ),
}
# fmt: on

# Experiments without an official counterpart: only their header is checked.
OURS = (
    "mnist/smnist",
    "mnist/pmnist",
    "mnist1d/s4",
    "sc/sc10_mfcc",
    "synthetic/adding",
    "synthetic/associative_recall",
    "synthetic/delay",
    "synthetic/induction_heads",
    "synthetic/selective_copying",
    # baselines of the paper's tables (LRA, fairseq and paper protocols; no S4 repo config)
    "cifar/transformer",
    "lm/transformer",
    "generation/kjv",  # generation demos (README): small CPU models
    "generation/fashion_pixels",
    *(f"lra_transformer/{task}" for task in ("listops", "imdb", "aan", "image", "pathfinder")),
    "lra_transformer/pathx",
    *(f"table3/{model}" for model in ("transformer", "performer", "linear_attention", "s4")),
)
