"""DDP averages gradients: one SGD step on 2 CPU processes x 32 examples == 1 process x 64.

Lightning's DDP strategy (gloo) runs this file as a script (`python tests/test_ddp.py <dir>`):
its launcher starts rank 1 with the same command line. The model is our S4 backbone (LayerNorm,
no dropout) under a mean-pool linear head; the DistributedSampler Lightning inserts gives each
rank its own half of the fixed batch. SGD, not Adam: Adam's first step is nearly sign(g),
which would hide gradients that were summed instead of averaged.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pytorch_lightning import LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from s4lab.models.backbone import SequenceModel
from s4lab.models.block import S4Block
from s4lab.models.s4 import S4Kernel
from s4lab.optim import optimizer_config

N, L, D_INPUT, D_OUTPUT = 64, 16, 2, 3


class Classifier(LightningModule):
    """S4 backbone -> mean over L -> linear; cross-entropy, SGD; records the examples it saw."""

    def __init__(self) -> None:
        super().__init__()
        layer = partial(S4Block, kernel=partial(S4Kernel, d_state=4, lr=0.05))
        self.model = SequenceModel(D_INPUT, layer, l_max=L, d_model=8, n_layers=2, norm="layer")
        self.head = nn.Linear(8, D_OUTPUT)
        self.seen: list[Tensor] = []

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        index, x, y = batch
        self.seen.append(index)
        return F.cross_entropy(self.head(self.model(x).mean(dim=1)), y)  # (B, L, H) -> (B, D)

    def configure_optimizers(self) -> Any:
        return optimizer_config(self, partial(torch.optim.SGD, lr=0.5), None, "val/loss")


def one_step(run_dir: Path, devices: int) -> None:
    """One optimizer step on the saved batch; each rank saves its weights and example ids."""
    module = Classifier()
    module.load_state_dict(torch.load(run_dir / "init.pt"))
    x, y = torch.load(run_dir / "data.pt")
    data = DataLoader(TensorDataset(torch.arange(N), x, y), batch_size=N // devices)
    trainer = Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=data)
    weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    result = {"weights": weights, "seen": torch.cat(module.seen)}
    torch.save(result, run_dir / f"devices{devices}_rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_two_processes_of_32_equal_one_process_of_64(tmp_path):
    torch.manual_seed(0)
    init = Classifier().state_dict()
    torch.save(init, tmp_path / "init.pt")
    torch.save((torch.randn(N, L, D_INPUT), torch.randint(D_OUTPUT, (N,))), tmp_path / "data.pt")
    one_step(tmp_path, devices=1)
    result = subprocess.run(
        [sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = torch.load(tmp_path / "devices1_rank0.pt")
    ranks = [torch.load(tmp_path / f"devices2_rank{r}.pt") for r in (0, 1)]

    assert sorted(one["seen"].tolist()) == list(range(N))
    halves = [set(r["seen"].tolist()) for r in ranks]  # the sampler's split of the batch
    assert len(halves[0]) == len(halves[1]) == N // 2 and halves[0] | halves[1] == set(range(N))
    moved = max((one["weights"][k] - v).abs().max().item() for k, v in init.items())
    assert moved > 1e-2  # the step is large enough for 1e-6 to tell the runs apart
    for rank in ranks:
        for name, value in one["weights"].items():
            torch.testing.assert_close(rank["weights"][name], value, rtol=0, atol=1e-6, msg=name)


if __name__ == "__main__":  # a DDP rank: python tests/test_ddp.py <run dir>
    one_step(Path(sys.argv[1]), devices=2)
