"""steg.report.runs: finding run folders in sweeps, reading one run, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from report_fakes import fake_run
from steg.report import CompareError, compare, find_run_dirs, load_run


def test_sweep_with_a_failed_run_and_nested_sweeps(tmp_path):
    root = tmp_path / "runs"
    fake_run(root / "sweep_1", "0_cnn_beta0.5", "cnn", overrides=["model=cnn"])
    fake_run(root / "sweep_1", "10_cnn_beta0.25", "cnn", beta=0.25, overrides=["model=cnn"])
    fake_run(root / "sweep_1", "2_cnn_beta1.0", "cnn", beta=1.0, overrides=["model=cnn"])
    failed = root / "sweep_1" / "1_cnn_beta0.75"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "config.yaml").write_text("beta: 0.75\n")
    warnings: list[str] = []
    found = find_run_dirs([root, root / "sweep_1" / "2_cnn_beta1.0"], warnings)  # a repeat counts once
    assert [p.name for p in found] == ["0_cnn_beta0.5", "2_cnn_beta1.0", "10_cnn_beta0.25"]  # natural order
    assert any("1_cnn_beta0.75" in w and "no metrics.json" in w for w in warnings)


def test_errors_are_one_line_and_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    file = tmp_path / "file.txt"
    file.write_text("x")
    bad = fake_run(tmp_path, "bad")
    (bad / "metrics.json").write_text("{not json\n\n")
    badyaml = fake_run(tmp_path, "badyaml")
    (badyaml / "config.yaml").write_text("a: [\n  b\n")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("beta: 0.5\n")
    good = fake_run(tmp_path, "good")
    cases = [
        ([empty], {}, "no runs found"),
        ([tmp_path / "missing"], {}, "not found"),
        ([file], {}, "is not a folder"),
        ([bad], {}, f"{bad / 'metrics.json'}: unreadable"),
        ([badyaml], {}, f"{badyaml / 'config.yaml'}: unreadable"),
        ([unfinished], {}, "no metrics.json"),
        ([good], {"metric": "val/nope"}, "metric val/nope is in none"),
        ([good], {"by": "mean"}, "rank by 'best' or 'final'"),
        ([good], {"floor": float("nan")}, "--floor must be a finite"),
    ]
    for dirs, kwargs, message in cases:
        with pytest.raises(CompareError) as info:
            compare(dirs, out=tmp_path / "out", **kwargs)
        assert message in str(info.value) and "\n" not in str(info.value), (message, str(info.value))
    assert not (tmp_path / "out").exists()  # nothing written on an error


def test_nulls_in_metrics_json_read_as_missing(tmp_path):
    # train.py writes null for a non-finite figure (e.g. stego PSNR of a stego equal to its cover).
    path = fake_run(tmp_path, "r", losses=(0.3, 0.2), psnr_stego=(20.0, 25.0))
    report = json.loads((path / "metrics.json").read_text())
    report["final"]["val/psnr_stego"] = None
    report["best"]["val/psnr_stego"] = None
    report["best_per_metric"]["val/psnr_stego"] = None
    report["wall_time_s"] = None
    report["epochs"] = None
    (path / "metrics.json").write_text(json.dumps(report))
    run = load_run(path)
    assert run.value("val/psnr_stego", "final") is None and run.value("val/psnr_stego", "at_best") is None
    assert run.value("val/psnr_stego", "best") == 25.0  # from the CSV curve
    assert run.wall_time_s is None and run.epochs is None
    result = compare([path], out=tmp_path / "o")
    assert result.sentence.startswith("no run has both PSNRs at the best checkpoint")


def test_steps_wall_time_and_status(tmp_path):
    a = load_run(fake_run(tmp_path, "a", extra={"wall_time_s": 754.4, "status": "interrupted"}))
    assert (a.steps, a.wall_time_s, a.status) == (6, 754.4, "interrupted")
    # An older metrics.json without steps, wall time or status: steps from the CSV's step column.
    b = load_run(fake_run(tmp_path, "b", losses=(0.3, 0.2, 0.1), psnr_stego=(1, 2, 3), psnr_secret=(1, 2, 3),
                          steps_per_epoch=7, extra={"steps": None}))
    assert (b.steps, b.wall_time_s, b.status) == (21, None, None)


def test_figures_are_those_of_the_best_checkpoint(tmp_path):
    # A residual model's stego PSNR peaks at epoch 0 (stego = cover) before it hides anything.
    run = load_run(fake_run(tmp_path, "0_unet_beta0.5", model="unet", losses=(0.5, 0.1),
                            psnr_stego=(50.0, 31.0), psnr_secret=(5.0, 20.0)))
    assert run.value("val/psnr_stego", "best") == 50.0
    assert run.value("val/psnr_stego", "at_best") == 31.0
    assert run.value("val/psnr_secret", "at_best") == 20.0


def test_labels_are_unique(tmp_path, monkeypatch):
    a = fake_run(tmp_path / "sweep_a", "0_cnn_beta0.5", "cnn", overrides=["model=cnn"])
    b = fake_run(tmp_path / "sweep_b", "0_cnn_beta0.5", "cnn", overrides=["model=cnn"])
    monkeypatch.chdir(tmp_path)
    result = compare([a, b])
    assert result.out_dir == Path("compare")
    assert sorted(r.label for r in result.runs) == ["sweep_a/0_cnn_beta0.5", "sweep_b/0_cnn_beta0.5"]
