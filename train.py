"""Train hide + reveal networks: `python train.py model=subpixel beta=0.75`.

Configs live in conf/ (see conf/train.yaml); all the work is in steg.training.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from steg.training import train

    return train(cfg)


if __name__ == "__main__":
    main()
