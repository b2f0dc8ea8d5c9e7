"""steg.report outputs: the printed table, compare.md/.csv, the PNGs and the HTML page; no overwrite."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image

from report_fakes import fake_run
from steg.report import OUTPUT_NAMES, CompareError, compare


@pytest.fixture
def sweep(tmp_path) -> Path:
    """A sweep over model and lr with two betas: one run below the 30 dB stego floor, one failed."""
    root = tmp_path / "sweep_x"
    fake_run(root, "0_subpixel_beta0.5", "subpixel", losses=(0.30, 0.20), psnr_stego=(30.0, 34.0),
             psnr_secret=(18.0, 24.0), overrides=["model=subpixel", "optimizer.lr=0.001", "trainer.max_epochs=2"],
             extra={"wall_time_s": 754.4, "status": "finished"})
    fake_run(root, "1_cnn_beta0.75", "cnn", beta=0.75, losses=(0.10, 0.25), psnr_stego=(36.0, 33.0),
             psnr_secret=(22.0, 21.0), overrides=["model=cnn", "beta=0.75", "optimizer.lr=0.0003",
                                                  "trainer.max_epochs=2"],
             extra={"wall_time_s": 3725.0, "status": "interrupted"})
    fake_run(root, "2_unet_beta0.5", "unet", losses=(0.40, 0.15), psnr_stego=(25.0, 28.0),
             psnr_secret=(25.0, 31.0), overrides=["model=unet", "optimizer.lr=0.001", "trainer.max_epochs=2"],
             extra={"status": "failed", "steps": None})
    return root


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[2:]]


def test_default_ranking_table_and_sentence(sweep):
    result = compare([sweep])
    header = result.table.splitlines()[0].split()
    assert header[:6] == ["rank", "run", "model", "beta", "optimizer.lr", "status"]  # swept keys only
    assert "trainer.max_epochs" not in result.table and "val/loss" not in result.table.splitlines()[0]
    rows = _rows(result.table)
    # subpixel (24 dB revealed at 34 dB stego) beats cnn (22 at 36); unet reveals best but is below the floor.
    assert [r[:2] for r in rows] == [["1*", "subpixel_beta0.5"], ["2", "cnn_beta0.75"], ["3", "unet_beta0.5"]]
    assert rows[0][5:9] == ["finished", "2", "6", "12m"] and rows[0][9] == "34s"  # status, epochs, steps, wall
    assert rows[1][5] == "interrupted" and rows[1][8:10] == ["1h", "02m"]
    assert rows[2][5] == "failed" and rows[2][7] == "6" and rows[2][8] == "-"  # steps from the CSV, no wall time
    assert rows[2][-3:-2] == ["below"] and rows[0][-3:-2] == ["ok"]
    assert result.sentence == (
        "subpixel_beta0.5 ranks first: revealed PSNR 24.00 dB at stego PSNR 34.00 dB (best checkpoint; floor "
        "30 dB), +2.00 dB over cnn_beta0.75; Pareto front of (stego PSNR, revealed PSNR): subpixel_beta0.5, "
        "cnn_beta0.75, unet_beta0.5; 1 run below the floor ranked after: unet_beta0.5.")
    assert result.warning is None  # different betas, but the PSNRs do not depend on beta


def test_metric_ranking_warns_when_betas_differ(sweep):
    result = compare([sweep], metric="val/loss")
    assert [r.label for r in result.runs] == ["cnn_beta0.75", "unet_beta0.5", "subpixel_beta0.5"]
    assert result.sentence.startswith("cnn_beta0.75 wins on val/loss (best 0.1, next best 0.15 by unet_beta0.5")
    assert result.warning and "beta (0.75, 0.5)" in result.warning and result.warning in result.warnings
    assert f"Warning: {result.warning}" in (sweep / "compare.html").read_text()
    assert f"**Warning:** {result.warning}" in (sweep / "compare.md").read_text()


def test_files_written(sweep):
    result = compare([sweep])
    assert set(result.outputs) == set(OUTPUT_NAMES) and all(p.parent == sweep for p in result.outputs.values())
    with (sweep / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["subpixel_beta0.5", "cnn_beta0.75", "unet_beta0.5"]
    assert [(r["winner"], r["front"], r["meets_floor"]) for r in rows] == [("1", "1", "1"), ("0", "1", "1"),
                                                                           ("0", "1", "0")]
    assert [r["status"] for r in rows] == ["finished", "interrupted", "failed"]
    assert [r["steps"] for r in rows] == ["6", "6", "6"] and rows[0]["wall_time_s"] == "754.4"
    assert float(rows[0]["val/psnr_secret at_best"]) == 24.0 and float(rows[1]["val/loss best"]) == 0.10
    md = (sweep / "compare.md").read_text()
    assert "| 1* | subpixel_beta0.5 | subpixel | 0.5 | 0.001 | finished |" in md
    assert "compare_pareto.png" in md and "compare_curves.png" in md
    for key in ("png", "pareto"):
        with Image.open(io.BytesIO(result.outputs[key].read_bytes())) as img:
            assert img.format == "PNG" and img.width > 400
    html = (sweep / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2 + 3  # Pareto plot, curves, each run's last grid
    assert "Pareto front" in html and "subpixel_beta0.5 ranks first" in html and "epoch 001" in html
    assert '<tr class="below">' in html and '<tr class="winner">' in html
    assert not list(sweep.glob(".*.tmp"))  # temporary files renamed away


def test_no_overwrite_without_force(sweep):
    compare([sweep])
    before = {p.name: p.read_bytes() for p in sweep.glob("compare*")}
    assert len(before) == len(OUTPUT_NAMES)
    with pytest.raises(CompareError, match="--force") as info:
        compare([sweep], metric="val/psnr_secret")
    assert "\n" not in str(info.value)
    assert {p.name: p.read_bytes() for p in sweep.glob("compare*")} == before
    (sweep / "compare.md").unlink()  # one output left is enough to refuse
    with pytest.raises(CompareError, match="compare.html"):
        compare([sweep])
    compare([sweep], metric="val/psnr_secret", force=True)
    assert "wins on val/psnr_secret" in (sweep / "compare.md").read_text()


def test_a_single_run_without_csv_or_grid(tmp_path, monkeypatch):
    run = fake_run(tmp_path, "only", with_csv=False, grids=0, psnr_stego=(31.0, 32.0))
    monkeypatch.chdir(tmp_path)
    result = compare([run])
    assert result.out_dir == Path("compare") and any("no csv/metrics.csv" in w for w in result.warnings)
    assert "the only run at or above the floor" in result.sentence
    html = (tmp_path / "compare" / "compare.html").read_text()
    assert "subpixel_beta0.5: no image grid" in html and html.count("data:image/png;base64,") == 2


@pytest.mark.parametrize("ci, tied", [(1.0, True), (0.1, False)])
def test_a_difference_within_the_validation_spread_is_a_tie(tmp_path, ci, tied):
    """steg compare names no winner by a margin the per-image spread does not support (issue: 0.0017 dB)."""
    import json

    root = tmp_path / "sweep"
    for name, revealed in (("0_unet_beta0.5", 24.5), ("1_cnn_beta0.5", 24.0)):
        run = fake_run(root, name, name.split("_")[1], losses=(0.3, 0.2), psnr_stego=(34.0, 34.0),
                       psnr_secret=(20.0, revealed))
        report = json.loads((run / "metrics.json").read_text())
        for row in ("best", "final"):
            report[row]["val/ci95_psnr_secret"] = ci  # as StegModule logs it beside val/psnr_secret
        (run / "metrics.json").write_text(json.dumps(report))
    sentence = compare([root]).sentence
    interval = f"+-{(2 * ci * ci) ** 0.5:.2f} dB"
    assert interval in sentence
    assert ("tied with cnn_beta0.5" in sentence) is tied and ("+0.50 dB over cnn_beta0.5" in sentence) is not tied
