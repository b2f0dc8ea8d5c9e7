"""experiments/learned/diagnose.py (issue 21's diagnosis table): its formulas, and the script end to end (--tiny)."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "learned" / "diagnose.py"


def _diagnose():
    spec = importlib.util.spec_from_file_location("diagnose", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uncoded_line_is_the_linear_estimate_under_rounding_noise():
    """10 log10((r^2 + q^2) / (sigma^2 q^2)): no residual = guessing the mean (1 / sigma^2); each 20 dB of
    residual-to-rounding ratio adds 20 dB; residual_rms_for_stego inverts the stego PSNR with rounding."""
    d = _diagnose()
    assert float(d.uncoded_psnr(0.0, 0.25)) == pytest.approx(10 * math.log10(1 / 0.25**2))
    r = 10 * math.sqrt(1 / 12)  # r^2 = 100 q^2
    assert float(d.uncoded_psnr(r, 0.5)) == pytest.approx(10 * math.log10(101 / 0.25))
    stego = 35.0
    r35 = float(d.residual_rms_for_stego(stego))
    assert 10 * math.log10(255**2 / (r35**2 + 1 / 12)) == pytest.approx(stego)


def test_cover_known_bound_finds_a_linear_copy_and_not_noise():
    """A secret that is a*residual + b per channel is recovered exactly (PSNR > 100 dB); an unrelated residual
    gives about the PSNR of the secret's own mean (its variance)."""
    d = _diagnose()
    torch.manual_seed(0)
    secret = torch.rand(2, 3, 16, 16)
    residual = (secret - 0.5) * torch.tensor([0.01, -0.02, 0.03]).view(1, 3, 1, 1)
    assert (d.cover_known_psnr(residual, secret) > 100).all()
    noise = d.cover_known_psnr(torch.randn(2, 3, 16, 16), secret)
    chance = -10 * torch.log10(secret.var(dim=(2, 3)).mean(dim=1))
    assert torch.allclose(noise.double(), chance.double(), atol=0.5)


def test_a_row_whose_model_is_not_in_this_checkout_is_skipped_with_a_line(tmp_path, monkeypatch, capsys):
    d = _diagnose()
    assert d._conf_missing(("model=unet", "beta=1")) is None
    assert d._conf_missing(("model=nosuch",)) == "model=nosuch: no conf/model/nosuch.yaml in this checkout"
    monkeypatch.setitem(d.ROWS, "ghost", (("model=nosuch",), "a model of another branch"))
    assert d.main(["--tiny", "--runs", "ghost", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "skipping row ghost: model=nosuch: no conf/model/nosuch.yaml" in err and "no row could run" in err
    assert d.main(["--runs", "nosuchrow", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_diagnose_tiny_runs_end_to_end_and_resumes(tmp_path):
    """`diagnose.py --tiny`: 2 rows of 2 steps (tiny nets, 32 px) train, are measured and tabled with finite
    figures; a second call finds them trained and measures again without training."""
    out = tmp_path / "diag"
    command = [sys.executable, str(SCRIPT), "--tiny", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    with (out / "table.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    d = _diagnose()
    assert [r["row"] for r in rows] == list(d.TINY_ROWS)
    figures = [f"{f}_{s}" for s in (32, 64) for f in d.FIGURES] + ["sigma_s_64", "wall_s"]
    for row in rows:
        assert row["steps"] == "2" and "trainer.max_steps=2" in row["overrides"]
        for name in figures:
            assert math.isfinite(float(row[name])), (row["row"], name)
        assert float(row["stego_64"]) > 20  # the residual starts at zero: stego close to the cover
    assert (out / "revealed_vs_stego.png").stat().st_size > 0
    assert "| `u_base` |" in (out / "table.md").read_text()
    second = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert second.returncode == 0 and second.stderr.count("already trained") == 2, second.stderr[-2000:]
