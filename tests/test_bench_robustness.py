"""The bench's robustness part, and security and robustness on the quality part's checkpoints."""

import json

import pytest

from bench_tables import finite, numbers, table
from steg.bench import main

pytestmark = pytest.mark.slow  # trains (train.py subprocesses) and runs steg analyze: make test-full

ATTACKS = ["clean", "jpeg:90", "jpeg:75", "webp:80", "noise:2", "resize:0.5", "blur:1", "crop:0.9"]
TINY = ["--eval-size", "64", "--thief-steps", "2", "--detector-steps", "2"]
TRAIN = "data.train_repeats=2 data.val_tiles=4 data.batch_size=4"


def test_robustness_of_a_shipped_model_every_attack(tmp_path):
    out = tmp_path / "bench"
    main(["--parts", "robustness", "--models", "default", "--eval-size", "64", "--out", str(out),
          "--runs-dir", str(tmp_path / "runs")])
    section = json.loads((out / "bench.json").read_text())["robustness"]
    (row,) = section["rows"]
    assert section["attacks"] == ATTACKS[1:] and row["model"] == "default" and row["pairs"] == 4
    assert list(row["attacks"]) == ATTACKS and all(finite(row["attacks"][a]["psnr_secret"]) for a in ATTACKS)
    assert row["attacks"]["clean"]["psnr_secret"] > row["attacks"]["jpeg:75"]["psnr_secret"] + 10  # qim is fragile
    assert row["command"].startswith("steg eval --model default --key steg-bench --covers")
    (cells,) = table((out / "bench.md").read_text(), "Robustness")
    assert cells[0] == "`default` (shipped)" and len(cells) == 3 + len(ATTACKS)
    assert [numbers(c)[0] for c in cells[3:]] == pytest.approx(
        [row["attacks"][a]["psnr_secret"] for a in ATTACKS], abs=0.006)


def test_security_and_robustness_measure_the_quality_checkpoints(tmp_path):
    """One bench trains qim and hinet (tiny, seconds) and measures them beside the shipped model; a
    second bench measures the same checkpoints again without training, keeps the first bench's
    other parts, and skips, with a line, an architecture that has no run."""
    out, runs = tmp_path / "bench", tmp_path / "runs"
    common = ["--tiny", "--budget-min", "0.1", *TINY, "--out", str(out), "--runs-dir", str(runs)]
    main(["--parts", "quality,security,robustness", "--models", "qim,hinet,default", "--train-args", TRAIN, *common])
    report = json.loads((out / "bench.json").read_text())
    assert [r["model"] for r in report["quality"]["rows"]] == ["qim", "hinet"]
    for part in ("security", "robustness"):
        rows = report[part]["rows"]
        assert [(r["model"], r["kind"]) for r in rows] == [("qim", "architecture"), ("hinet", "architecture"),
                                                            ("default", "shipped")]
        assert [r["source"] for r in rows[:2]] == [q["checkpoint"] for q in report["quality"]["rows"]]
        assert [r["keyed"] for r in rows] == [True, False, True]
    for row in report["security"]["rows"]:
        assert finite(row["psnr_stego"], row["no_key_psnr"], row["best_keyless_psnr"], row["thief_psnr"],
                      row["steganalyser_auroc"], row["chi_square_best_accuracy"])
        assert finite(row["wrong_key_psnr"]) if row["keyed"] else row["wrong_key_psnr"] is None
    for row in report["robustness"]["rows"]:
        assert all(finite(row["attacks"][a]["psnr_secret"]) for a in ATTACKS)
    md = (out / "bench.md").read_text()
    for heading in ("Security", "Robustness"):
        assert [cells[0] for cells in table(md, heading)] == ["`qim`", "`hinet`", "`default` (shipped)"]
    hinet_security = table(md, "Security")[1]
    assert hinet_security[3] == "-" and numbers(hinet_security[4])  # no keyed mode: no wrong key, no key = revealed

    checkpoint = runs / "qim_0.1min" / "checkpoints"
    before = {p: p.stat().st_mtime_ns for p in checkpoint.iterdir()}
    main(["--parts", "robustness,security", "--models", "qim,unet", *common])
    assert {p: p.stat().st_mtime_ns for p in checkpoint.iterdir()} == before  # nothing trained
    again = json.loads((out / "bench.json").read_text())
    assert again["quality"] == report["quality"]  # kept, with the command that measured it
    assert "--parts quality,security,robustness" in again["quality"]["environment"]["command"]
    for part in ("security", "robustness"):
        assert [r["model"] for r in again[part]["rows"]] == ["qim"]
        (skipped,) = again[part]["skipped"]
        assert skipped["model"] == "unet" and "no checkpoint of unet" in skipped["reason"]
    md = (out / "bench.md").read_text()
    assert "Kept from an earlier run" in md and "### Quality" in md
    assert md.count("`unet`: not measured: no checkpoint of unet in") == 2
    assert [cells[0] for cells in table(md, "Robustness")] == ["`qim`"]
