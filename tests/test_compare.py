"""`steg compare` on run folders written by hand: ranking, table, winner sentence, outputs, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from steg.cli import main
from steg.compare import CompareError, compare, higher_is_better, load_run, rank_runs, winner_sentence


def fake_run(
    root: Path,
    folder: str,
    model: str = "subpixel",
    beta: float = 0.5,
    losses: tuple[float, ...] = (0.3, 0.2),
    psnr_stego: tuple[float, ...] = (20.0, 25.0),
    psnr_secret: tuple[float, ...] = (18.0, 22.0),
    overrides: list[str] | None = None,
    run_name: str | None = None,
    with_csv: bool = True,
    grids: int = 2,
) -> Path:
    """A run folder as train.py writes it: metrics.json, config.yaml, csv/metrics.csv, images/, .hydra/."""
    run = root / folder
    (run / "csv").mkdir(parents=True)
    rows = [{"epoch": e, "step": 3 * (e + 1), "val/loss": l, "val/psnr_stego": s, "val/psnr_secret": t,
             "val/ssim_stego": 0.5 + 0.1 * e, "val/ssim_secret": 0.4 + 0.1 * e}
            for e, (l, s, t) in enumerate(zip(losses, psnr_stego, psnr_secret))]
    best_row = min(rows, key=lambda r: r["val/loss"])
    report = {
        "model": model.split("_")[0],
        "beta": beta,
        "epochs": len(rows),
        "steps": rows[-1]["step"],
        "final": rows[-1],
        "best": {"monitor": "val/loss", "mode": "min", **best_row},
        "best_per_metric": {"val/psnr_stego": max(psnr_stego), "val/psnr_secret": max(psnr_secret),
                            "val/ssim_stego": max(r["val/ssim_stego"] for r in rows),
                            "val/ssim_secret": max(r["val/ssim_secret"] for r in rows)},
        "paths": {"run_dir": str(run)},
    }
    (run / "metrics.json").write_text(json.dumps(report))
    config = {"beta": beta, "run_name": run_name or f"{model}_beta{beta}",
              "model": {"_target_": f"steg.nets.{model.capitalize()}"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    if overrides is not None:
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if with_csv:
        header = ["epoch", "lr-Adam", "step", "train/loss_epoch", *rows[0].keys() - {"epoch", "step"}]
        with (run / "csv" / "metrics.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerow({"lr-Adam": 0.001, "step": 0})  # no epoch: a learning-rate row
            for row in rows:
                writer.writerow({"epoch": row["epoch"], "step": row["step"], "train/loss_epoch": 1.0})
                writer.writerow(row)
    (run / "images").mkdir()
    for e in range(grids):
        Image.new("RGB", (40, 20), (40 * e, 100, 200)).save(run / "images" / f"epoch_{e:03d}.png")
    return run


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Three runs of a sweep over model and lr (same beta)."""
    root = tmp_path / "sweep_x"
    fake_run(root, "0_subpixel_beta0.5", "subpixel", losses=(0.30, 0.20), psnr_stego=(20.0, 26.0),
             psnr_secret=(18.0, 21.0), overrides=["model=subpixel", "optimizer.lr=0.001", "trainer.max_epochs=2"])
    fake_run(root, "1_cnn_beta0.5", "cnn", losses=(0.10, 0.25), psnr_stego=(24.0, 23.0),
             psnr_secret=(23.5, 22.0), overrides=["model=cnn", "optimizer.lr=0.0003", "trainer.max_epochs=2"])
    fake_run(root, "2_unet_beta0.5", "unet", losses=(0.40, 0.15), psnr_stego=(19.0, 25.0),
             psnr_secret=(17.0, 20.0), overrides=["model=unet", "optimizer.lr=0.001", "trainer.max_epochs=2"])
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_ranking_by_best_and_final_and_direction(sweep):
    runs = [load_run(p) for p in sorted(sweep.iterdir()) if p.is_dir()]
    names = lambda ranked: [r.run_name for r in ranked]  # noqa: E731
    assert names(rank_runs(runs, "val/loss", "best")) == ["cnn_beta0.5", "unet_beta0.5", "subpixel_beta0.5"]
    assert names(rank_runs(runs, "val/loss", "final")) == ["unet_beta0.5", "subpixel_beta0.5", "cnn_beta0.5"]
    assert names(rank_runs(runs, "val/psnr_secret", "best")) == ["cnn_beta0.5", "subpixel_beta0.5", "unet_beta0.5"]
    assert names(rank_runs(runs, "val/psnr_stego", "final")) == ["subpixel_beta0.5", "unet_beta0.5", "cnn_beta0.5"]
    assert higher_is_better("val/psnr_stego") and higher_is_better("val/ssim_secret")
    assert not higher_is_better("val/loss") and not higher_is_better("val/apd_secret")
    assert not higher_is_better("val/cover_psnr")  # the loss term (-PSNR) is minimised


def test_winner_sentence(sweep):
    runs = [load_run(p) for p in sorted(sweep.iterdir()) if p.is_dir()]
    assert winner_sentence(runs, "val/loss", "best") == (
        "cnn_beta0.5 wins on val/loss (best 0.1, next best 0.15 by unet_beta0.5: 33.3% lower); "
        "best stego PSNR at the best checkpoint: subpixel_beta0.5 (26.00 dB, +1.00 dB over unet_beta0.5); "
        "best secret PSNR at the best checkpoint: cnn_beta0.5 (23.50 dB, +2.50 dB over subpixel_beta0.5)."
    )
    assert winner_sentence(runs, "val/loss", "final").startswith(
        "unet_beta0.5 wins on val/loss (final 0.15, next best 0.2 by subpixel_beta0.5: 25.0% lower)")
    assert winner_sentence(runs[:1], "val/loss").startswith("subpixel_beta0.5 is the only run with val/loss (best 0.2)")


def test_compare_writes_table_csv_curves_and_html(sweep, capsys):
    assert main(["compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:5] == ["rank", "run", "model", "beta", "optimizer.lr"]  # swept keys only
    assert "trainer.max_epochs" not in lines[0]
    assert lines[2].startswith("1*") and "cnn_beta0.5" in lines[2]  # winner first, marked
    assert lines[3].startswith("2 ") and "unet_beta0.5" in lines[3]
    assert "cnn_beta0.5 wins on val/loss" in out
    with (sweep / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["cnn_beta0.5", "unet_beta0.5", "subpixel_beta0.5"]
    assert [r["winner"] for r in rows] == ["1", "0", "0"]
    assert float(rows[0]["val/loss best"]) == 0.10 and float(rows[0]["val/loss final"]) == 0.25
    assert rows[0]["optimizer.lr"] == "0.0003" and rows[0]["model"] == "cnn"
    md = (sweep / "compare.md").read_text()
    assert "| 1* | cnn_beta0.5 | cnn | 0.5 | 0.0003 |" in md and "compare_curves.png" in md
    html = (sweep / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + 3
    assert "cnn_beta0.5 wins on val/loss" in html and "epoch 001" in html
    assert (sweep / "compare_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(sweep.glob(".*.tmp"))  # temp files renamed away


def test_refuses_to_overwrite_without_force(sweep, capsys):
    assert main(["compare", str(sweep)]) == 0
    before = {p.name: p.read_bytes() for p in sweep.glob("compare*")}
    capsys.readouterr()
    assert main(["compare", str(sweep), "--metric", "val/psnr_secret"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("steg: error: ") and err.count("\n") == 1 and "--force" in err
    assert {p.name: p.read_bytes() for p in sweep.glob("compare*")} == before
    assert main(["compare", str(sweep), "--metric", "val/psnr_secret", "--force"]) == 0
    assert "cnn_beta0.5 wins on val/psnr_secret" in (sweep / "compare.md").read_text()


def test_errors_are_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([str(empty)], "no runs found"),
        ([str(tmp_path / "missing")], "not found"),
    ]
    file = tmp_path / "file.txt"
    file.write_text("x")
    cases.append(([str(file)], "is not a folder"))
    bad = fake_run(tmp_path, "bad")
    (bad / "metrics.json").write_text("{not json")
    cases.append(([str(bad)], "metrics.json: unreadable"))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("beta: 0.5\n")
    cases.append(([str(unfinished)], "no metrics.json"))
    good = fake_run(tmp_path, "good")
    cases.append(([str(good), "--metric", "val/nope", "--out", str(tmp_path / "o")], "metric val/nope is in none"))
    for args, message in cases:
        assert main(["compare", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("steg: error: ") and err.count("\n") == 1 and message in err, err
    with pytest.raises(CompareError, match="no runs found"):
        compare([empty])


def test_run_folders_default_output_and_labels(tmp_path, monkeypatch):
    # The same run and folder name in two sweeps: parent/folder labels them; run folders -> ./compare.
    a = fake_run(tmp_path / "sweep_a", "0_cnn_beta0.5", "cnn", losses=(0.2,), overrides=["model=cnn"])
    b = fake_run(tmp_path / "sweep_b", "0_cnn_beta0.5", "cnn", losses=(0.1,), overrides=["model=cnn"])
    c = fake_run(tmp_path / "sweep_b", "1_cnn_beta0.75", "cnn", beta=0.75, losses=(0.3,), with_csv=False, grids=0)
    monkeypatch.chdir(tmp_path)
    result = compare([a, b, c, b])  # a repeated folder counts once
    assert result.out_dir == Path("compare") and (tmp_path / "compare" / "compare.html").is_file()
    assert [r.label for r in result.runs] == ["sweep_b/0_cnn_beta0.5", "sweep_a/0_cnn_beta0.5",
                                              "sweep_b/1_cnn_beta0.75"]
    assert any("no csv/metrics.csv" in w for w in result.warnings)
    html = (tmp_path / "compare" / "compare.html").read_text()
    assert "sweep_b/1_cnn_beta0.75: no image grid" in html and html.count("data:image/png;base64,") == 1 + 2


def test_sweep_with_a_failed_run_and_nested_sweeps(tmp_path):
    root = tmp_path / "runs"
    fake_run(root / "sweep_1", "0_cnn_beta0.5", "cnn", overrides=["model=cnn"])
    fake_run(root / "sweep_1", "10_cnn_beta0.25", "cnn", beta=0.25, losses=(0.5, 0.4), overrides=["model=cnn"])
    fake_run(root / "sweep_1", "2_cnn_beta1.0", "cnn", beta=1.0, losses=(0.5, 0.45), overrides=["model=cnn"])
    failed = root / "sweep_1" / "1_cnn_beta0.75"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "config.yaml").write_text("beta: 0.75\n")
    result = compare([root], out=tmp_path / "out")
    assert [r.path.name for r in sorted(result.runs, key=lambda r: r.beta)] == [
        "10_cnn_beta0.25", "0_cnn_beta0.5", "2_cnn_beta1.0"]
    assert any("1_cnn_beta0.75" in w and "no metrics.json" in w for w in result.warnings)
    assert "beta" in result.table.splitlines()[0]


def test_figures_are_shown_at_the_best_checkpoint(tmp_path):
    # A residual model's stego PSNR peaks at epoch 0 (stego = cover) before it hides
    # anything; the table must show the figures of the best checkpoint's epoch instead.
    from steg.compare import load_run

    run = load_run(fake_run(tmp_path, "0_unet_beta0.5", model="unet", losses=(0.5, 0.1),
                            psnr_stego=(50.0, 31.0), psnr_secret=(5.0, 20.0)))
    assert run.value("val/psnr_stego", "best") == 50.0
    assert run.value("val/psnr_stego", "at_best") == 31.0
    assert run.value("val/psnr_secret", "at_best") == 20.0
