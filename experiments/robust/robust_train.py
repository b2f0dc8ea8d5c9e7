"""Short robust-training experiment: a StegModule with a distortion between hide and reveal.

Builds steg.training.module.StegModule directly (no Hydra run) and inserts the distortion the way the
integration will (see docs/robustness.md): ``revealed = net.reveal(distortion(quantize_ste(stego),
cover).image)``, loss on the secret cut to the distortion's window. Then measures the trained
model on the 4 held-out photos at 256x256 under real attacks (steg.distortions.attacks).

    PYTHONPATH=$PWD python experiments/robust/robust_train.py --distortion jpeg --steps 600 \
        --json experiments/robust/unet_jpeg.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import hydra.utils
import lightning as L
import torch
from omegaconf import OmegaConf

from steg.inference.evaluation import evaluate_attacks
from steg.data import SampleDataModule, sample_photo_paths
from steg.inference.model import StegModel
from steg.io import write_text
from steg.training.losses import ImageLoss
from steg.quantize import quantize, quantize_ste
from steg.training.module import StegModule
from steg.nets import UnshuffleUNet

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = "jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9"


class DistortedStegModule(StegModule):
    """StegModule whose training step passes the 8-bit stego image through ``distortion``."""

    def __init__(self, *args, distortion: torch.nn.Module, **kwargs):
        super().__init__(*args, **kwargs)
        self.distortion = distortion

    def training_step(self, batch, batch_idx):
        cover, secret = self._images(batch)
        stego = self.net.hide(cover, secret)
        if self.quantize_train:
            stego = quantize_ste(stego)
        seen = self.distortion(stego, cover)
        revealed = self.net.reveal(self.net.noise(seen.image))
        target = seen.crop(secret)
        total = self._objective(cover, target, stego, revealed, "train")
        with torch.no_grad():
            self._update_metrics("train", cover, target, quantize(stego), quantize(revealed))
        return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--distortion", default="jpeg", help="a conf/distortion/NAME.yaml")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the distortion config")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--beta", type=float, default=0.75)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path, help="write the attack table here")
    args = p.parse_args()

    torch.set_num_threads(2)
    L.seed_everything(args.seed, verbose=False)
    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "distortion" / f"{args.distortion}.yaml"),
                          OmegaConf.from_dotlist(args.set))
    distortion = hydra.utils.instantiate(cfg)
    net = UnshuffleUNet(channels=3, width=args.width, depth=2)
    module = DistortedStegModule(
        net, ImageLoss(mse=1.0), beta=args.beta, distortion=distortion,
        optimizer=lambda params: torch.optim.Adam(params, lr=args.lr),
        scheduler=lambda optimizer: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps),
        scheduler_interval="step", channels_last=True,
    )
    data = SampleDataModule(image_size=64, batch_size=16, train_repeats=1000, val_tiles=8)
    trainer = L.Trainer(accelerator="cpu", max_steps=args.steps, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    start = time.time()
    trainer.fit(module, datamodule=data)
    minutes = (time.time() - start) / 60

    photos = sample_photo_paths("val")
    pairs = [(photos[i], photos[(i + 1) % len(photos)]) for i in range(len(photos))]
    model = StegModel(net.float().to(memory_format=torch.contiguous_format), tile=None)
    report = evaluate_attacks(model, pairs, ATTACKS, size=256, grid=False)
    print(f"== unet width {args.width}, distortion {args.distortion} {dict(OmegaConf.from_dotlist(args.set))}, "
          f"{args.steps} steps of batch 16 at 64x64 in {minutes:.1f} min (shared 2-core CPU)")
    print(report.table)
    if args.json:
        write_text(args.json, json.dumps({"distortion": OmegaConf.to_container(cfg), "steps": args.steps,
                                          "width": args.width, "beta": args.beta, "minutes": round(minutes, 2),
                                          "summary": report.summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
