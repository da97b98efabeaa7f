"""Entry point: `python train.py [experiment=<bench>/<name>] [key=value ...]`; see configs/."""

import hydra
from omegaconf import DictConfig

from s4lab.train import train


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
