"""The 30-minute comparison's curve: ``model=learned``'s validation PSNRs against wall time.

Usage: ``python experiments/learned/plot_thirty.py RUN_DIR OUT.png``. RUN_DIR is a run folder of
``python train.py model=learned logger=csv ...`` (its ``csv/metrics.csv``). The other nets' figures
after 30 minutes (experiments/hinet, best checkpoints, the same 64x64 validation tiles) are drawn as
horizontal marks at the right edge; the issue's aims as dashed lines.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Validation PSNRs (stego, revealed) of the best checkpoint after 30 CPU-minutes: experiments/hinet/README.md.
THIRTY_MINUTES = {"unet": (34.86, 22.05), "hinet": (28.21, 23.48), "qim (fixed code)": (36.75, 37.10)}


def read_curve(run: Path) -> list[dict[str, float]]:
    """Per validation: minutes since the first logged row, epoch, val stego and revealed PSNR."""
    rows = list(csv.DictReader(open(run / "csv" / "metrics.csv")))
    points = []
    for row in rows:
        if row.get("val/psnr_secret"):
            points.append({"epoch": float(row["epoch"]), "step": float(row["step"]),
                           "stego": float(row["val/psnr_stego"]), "secret": float(row["val/psnr_secret"])})
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=None,
                        help="the run's wall time in minutes (x axis = steps scaled to it); default: steps")
    args = parser.parse_args()
    points = read_curve(args.run)
    if not points:
        raise SystemExit(f"{args.run}: no validation rows in csv/metrics.csv")
    last = points[-1]["step"] or 1.0
    scale = (args.minutes / last) if args.minutes else 1.0
    x = [p["step"] * scale for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, [p["stego"] for p in points], label="learned: stego", color="tab:blue")
    ax.plot(x, [p["secret"] for p in points], label="learned: revealed", color="tab:red")
    ax.axhline(34, ls="--", color="tab:blue", lw=0.8)
    ax.axhline(30, ls="--", color="tab:red", lw=0.8)
    right = x[-1]
    for i, (name, (stego, secret)) in enumerate(THIRTY_MINUTES.items()):
        ax.plot([right * 1.02], [secret], marker="<", color=f"C{i + 3}", ls="none", label=f"{name}: revealed at 30 min")
    ax.set_xlabel("minutes (2 CPU cores)" if args.minutes else "optimizer steps")
    ax.set_ylabel("PSNR (dB), 64x64 held-out tiles, 8-bit stego")
    ax.set_ylim(10, 40)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("model=learned: a learned code on a lattice, from random weights")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(args.out)


if __name__ == "__main__":
    main()
