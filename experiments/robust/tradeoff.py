"""Stego quality against robustness for one trained residual model: scale its change to the cover.

A residual hide net writes ``stego = cover + r``; hiding with ``cover + s * r`` (strength s)
trades the stego image's fidelity for the secret's survival. For each strength, on held-out
pairs (image i hides image i+1): the 8-bit stego image's PSNR against the cover, and the PSNR of
the secret revealed from it clean and after each real attack (``steg.distortions.attacks``: Pillow's codecs).
Writes ``tradeoff.json`` and ``tradeoff.png`` (stego PSNR on x, revealed PSNR on y, a curve per
attack, each point labelled with its strength).

    PYTHONPATH=$PWD python experiments/robust/tradeoff.py --model robust --images /tmp/heldout \
        --out experiments/robust --strengths 0.5,0.75,1,1.25,1.5,2 --attacks jpeg:90,jpeg:75,noise:2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional import peak_signal_noise_ratio
from tqdm.auto import tqdm

from steg.distortions.attacks import apply_attack, parse_attacks
from steg.inference.evaluation import folder_pairs
from steg.inference.model import load_model
from steg.io import load_image, square_image, to_pil, to_tensor, write_text
from steg.report.plots import save_figure
from steg.quantize import quantize


def psnr_db(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(peak_signal_noise_ratio(pred, target, data_range=1.0))


def measure(model, pairs, size: int, strengths: list[float], attacks: list[str]) -> dict:
    """Per strength: mean stego PSNR, revealed PSNR clean and per attack (8-bit images)."""
    rows = {s: {"stego": [], "clean": [], **{a: [] for a in attacks}} for s in strengths}
    rng = np.random.default_rng(0)
    for cover_path, secret_path in tqdm(pairs, desc="pairs"):
        cover = to_tensor(square_image(load_image(cover_path), size)).unsqueeze(0)
        secret = to_tensor(square_image(load_image(secret_path), size)).unsqueeze(0)
        residual = model.hide_tensor(cover, secret) - cover
        for s in strengths:
            stego = quantize(cover + s * residual)
            rows[s]["stego"].append(psnr_db(stego, cover))
            rows[s]["clean"].append(psnr_db(quantize(model.reveal_tensor(stego)), secret))
            for a in attacks:
                hit = apply_attack(to_pil(stego[0]), a, rng)
                revealed = quantize(model.reveal_tensor(to_tensor(hit.image).unsqueeze(0)))
                rows[s][a].append(psnr_db(revealed, hit.window(secret)))
    return {str(s): {k: float(np.mean(v)) for k, v in r.items()} for s, r in rows.items()}


def plot(result: dict, attacks: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    strengths = list(result)
    x = [result[s]["stego"] for s in strengths]
    for name in ["clean", *attacks]:
        y = [result[s][name] for s in strengths]
        ax.plot(x, y, marker="o", label=name, linestyle="--" if name == "clean" else "-")
    for s, xi in zip(strengths, x):
        ax.annotate(f"x{float(s):g}", (xi, result[s]["clean"]), textcoords="offset points", xytext=(0, 6),
                    fontsize=7, ha="center")
    ax.set_xlabel("stego PSNR vs cover (dB, 8-bit PNG)")
    ax.set_ylabel("revealed secret PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="robust", help="model file or shipped model name")
    p.add_argument("--images", required=True, help="folder of held-out photos (image i hides image i+1)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--strengths", default="0.5,0.75,1,1.25,1.5,2")
    p.add_argument("--attacks", default="jpeg:90,jpeg:75,noise:2")
    p.add_argument("--out", default="experiments/robust")
    args = p.parse_args(argv)
    strengths = [float(s) for s in args.strengths.split(",")]
    attacks = [a.spec for a in parse_attacks(args.attacks)]
    model = load_model(args.model)
    result = measure(model, folder_pairs(args.images), args.size, strengths, attacks)
    out = Path(args.out)
    report = {"model": args.model, "size": args.size, "attacks": attacks, "by_strength": result}
    write_text(out / "tradeoff.json", json.dumps(report, indent=2) + "\n")
    plot(result, attacks, out / "tradeoff.png", f"{args.model}: strength of the change to the cover, {args.size}x{args.size}")
    for s, r in result.items():
        print(f"x{float(s):<5g} stego {r['stego']:6.2f} dB  clean {r['clean']:6.2f}  "
              + "  ".join(f"{a} {r[a]:6.2f}" for a in attacks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
