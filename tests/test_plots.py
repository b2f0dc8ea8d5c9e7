"""steg.report.plots: the run's PNG figures are real PNGs, written atomically, of the expected size."""

from __future__ import annotations

import torch
from PIL import Image

from steg.report.plots import comparison_grid, plot_curves, plot_error_histograms, save_image_atomic


def test_comparison_grid_layout():
    x = torch.rand(3, 3, 16, 16)
    grid = comparison_grid(x, x, x, x, max_rows=2, tile=32)
    # 5 columns of 32 px tiles with 4 px gaps; a 18 px header and 2 rows.
    assert grid.size == (5 * 36 + 4, 18 + 2 * 36 + 4)


def test_figures_are_written_atomically(tmp_path):
    history = [{"epoch": e, "train/loss_epoch": 1.0 / (e + 1), "val/loss": 0.5 / (e + 1),
                "val/psnr_stego": 30.0 + e, "val/psnr_secret": 20.0 + e, "val/ssim_stego": 0.9} for e in range(3)]
    counts = {"stego": torch.tensor([10.0, 5.0, 1.0] + [0.0] * 253), "revealed": torch.zeros(256)}
    paths = [plot_curves(history, tmp_path / "plots" / "loss_curves.png"),
             plot_error_histograms(counts, tmp_path / "plots" / "hist.png", title="t"),
             save_image_atomic(Image.new("RGB", (8, 8)), tmp_path / "grid.png")]
    for path in paths:
        with Image.open(path) as img:
            assert img.format == "PNG"
    assert Image.open(paths[0]).size == (1500, 400)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["grid.png", "hist.png", "loss_curves.png", "plots"]
