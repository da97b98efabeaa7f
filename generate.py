"""Entry point: `python generate.py run=<run dir or .ckpt> [prompt=... n_samples=... length=...
temperature=... top_k=... top_p=... seed=...]`; see configs/generate.yaml."""

import hydra
from omegaconf import DictConfig

from s4lab.generate import generate


@hydra.main(version_base="1.3", config_path="configs", config_name="generate")
def main(cfg: DictConfig) -> None:
    print(f"wrote {generate(cfg)}")


if __name__ == "__main__":
    main()
