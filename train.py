"""Entry point: `python train.py [experiment=<bench>/<name>] [key=value ...]`; see configs/.

`python train.py experiment=<name> ckpt_path=<.ckpt or run dir> train=false` only tests those
weights and prints the test metrics; in Python, `s4lab.load(<run dir>)` returns the trained task.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from s4lab.train import check_experiment_args, train

CONFIGS = Path(__file__).parent / "configs"


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    check_experiment_args(sys.argv[1:], CONFIGS)
    main()
