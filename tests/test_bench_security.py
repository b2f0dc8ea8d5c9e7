"""The bench's security part: `steg analyze` figures for every model, one row each, on a tiny budget."""

import json

import pytest

from bench_tables import finite, numbers, table
from steg.bench import main

pytestmark = pytest.mark.slow  # runs steg analyze (thief, steganalyser): make test-full

TINY = ["--eval-size", "64", "--thief-steps", "2", "--detector-steps", "2"]


def test_security_of_a_shipped_model_needs_no_training(tmp_path, capsys):
    out, runs = tmp_path / "bench", tmp_path / "runs"
    main(["--parts", "security", "--models", "default", *TINY, "--out", str(out), "--runs-dir", str(runs)])
    report = json.loads((out / "bench.json").read_text())
    section = report["security"]
    (row,) = section["rows"]
    assert row["model"] == "default" and row["kind"] == "shipped" and row["keyed"] is True  # qim takes a key
    assert section["skipped"] == [] and section["thief_steps"] == 2 and section["size"] == 64
    assert finite(row["psnr_stego"], row["psnr_secret"], row["wrong_key_psnr"], row["no_key_psnr"],
                  row["best_keyless_psnr"], row["thief_psnr"], row["grey_psnr"])
    assert 0 <= row["steganalyser_best_accuracy"] <= 1 and 0 <= row["chi_square_auroc"] <= 1
    assert row["psnr_stego"] > 30  # the shipped qim: at most 6 levels off by construction
    # the analysis as `steg analyze` writes it, with the command that reproduces it
    analysis = json.loads((runs / "security" / "shipped-default" / "analyze.json").read_text())
    assert analysis["command"] == row["command"] and row["command"].startswith("steg analyze --model default --key")
    assert analysis["thief"]["psnr"] == pytest.approx(row["thief_psnr"])
    assert (runs / "security" / "shipped-default" / "analyze.html").is_file()
    md = (out / "bench.md").read_text()
    (cells,) = table(md, "Security")
    assert cells[0] == "`default` (shipped)" and cells[1] == "yes"
    assert numbers(cells[2]) == pytest.approx([row["psnr_stego"], row["psnr_secret"]], abs=0.006)
    assert all(numbers(c) for c in cells[3:])  # every figure measured (a keyed model has a wrong-key one)
    assert row["command"] in md and md.strip() in capsys.readouterr().out


def test_bad_images_folder_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(SystemExit, match=r"--images .*photos: 0 images; at least 2"):
        main(["--parts", "security", "--models", "default", "--images", str(tmp_path / "photos"),
              "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_broken_bench_json_is_kept_and_named(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "bench.json").write_text("not json")
    with pytest.raises(SystemExit, match="bench.json is not a bench report"):
        main(["--parts", "security", "--models", "default", *TINY, "--out", str(out), "--runs-dir", str(tmp_path)])
    assert (out / "bench.json").read_text() == "not json"
