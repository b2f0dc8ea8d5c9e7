"""steg analyze end to end (tiny budget), the steganalysis pieces and the keyless attacks."""

from __future__ import annotations

import re

import json

import pytest
import torch

from steg.security.leakage import keyless_attacks
from steg.cli import main
from steg.security.steganalysis import SRM_KERNELS, SRMFilters, Steganalyser, detection_scores, pov_chi_square, train_steganalyser
from torchmetrics.functional.classification import binary_auroc


def test_srm_filters_are_high_pass():
    for name, k in SRM_KERNELS.items():
        assert abs(float(k.sum())) < 1e-6, name
    srm = SRMFilters(3)
    flat = torch.full((1, 3, 16, 16), 0.4)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16)
    assert float(srm(flat)[..., 2:-2, 2:-2].abs().max()) < 1e-4
    # a linear ramp survives only the first-order horizontal kernel
    out = srm(ramp)[..., 2:-2, 2:-2].abs().amax(dim=(0, 2, 3)).view(3, -1)
    names = list(SRM_KERNELS)
    assert all(float(out[:, i].max()) < 1e-3 for i, n in enumerate(names) if n != "first_h")
    assert srm(torch.rand(2, 3, 8, 8)).shape == (2, 3 * len(SRM_KERNELS), 8, 8)


def test_pov_chi_square_flags_lsb_replacement():
    gen = torch.Generator().manual_seed(0)
    # "natural" images: smooth, so that the histogram is uneven between 2k and 2k+1
    base = torch.nn.functional.interpolate(torch.rand(16, 1, 4, 4, generator=gen), size=32, mode="bilinear")
    covers = torch.round((0.2 + 0.6 * base) * 255 / 4) * 4 / 255  # values multiples of 4: no odd values
    lsb = torch.randint(0, 2, covers.shape, generator=gen)
    stegos = (torch.round(covers * 255).long() // 2 * 2 + lsb) / 255.0
    labels = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    scores = pov_chi_square(torch.cat([covers, stegos]))
    assert float(binary_auroc(scores, labels)) > 0.95
    assert float(scores[:16].max()) < 0.5 < float(scores[16:].min())


def test_steganalyser_learns_additive_noise():
    """Cover vs cover + uniform noise of +-6 levels (what unkeyed and keyed qim both add)."""
    gen = torch.Generator().manual_seed(0)

    def covers(n: int) -> torch.Tensor:
        base = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=32, mode="bilinear")
        return torch.round(base * 255) / 255

    def noisy(c: torch.Tensor) -> torch.Tensor:
        return torch.round((c * 255 + torch.randint(-6, 7, c.shape, generator=gen)).clamp(0, 255)) / 255

    def make_batch():
        c = covers(8)
        return c, noisy(c)

    torch.manual_seed(0)
    net = train_steganalyser(make_batch, 3, steps=30)
    assert isinstance(net, Steganalyser)
    test = covers(32)
    scores = detection_scores(net, torch.cat([test, noisy(test)]))
    labels = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    assert float(binary_auroc(scores, labels)) > 0.9


def test_keyless_attacks_names_and_ranges():
    stego, cover = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    out = keyless_attacks(stego, cover)
    assert {"residue/2", "residue/32", "bitplane/c2/b7", "residual/x10", "abs_residual/x20"} <= set(out)
    assert len([k for k in out if k.startswith("residue/")]) == 31
    assert all(v.shape == stego.shape and float(v.min()) >= 0 and float(v.max()) <= 1 for v in out.values())
    assert "residual/x10" not in keyless_attacks(stego)


@pytest.mark.parametrize("keyed", [True, False])
def test_steg_analyze_end_to_end(tmp_path, capsys, keyed):
    out = tmp_path / "report"
    argv = ["analyze", "--out", str(out), "--size", "64", "--limit", "3", "--thief-steps", "2", "--detector-steps", "2"]
    if keyed:
        argv += ["--key", "correct horse"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "learned thief" in printed and "steganalyser" in printed
    report = json.loads((out / "analyze.json").read_text())
    assert report["keyed"] is keyed and report["n"] == 3 and report["quantized"] is True
    assert report["command"].startswith("steg analyze") and ("PASSPHRASE" in report["command"]) is keyed
    assert "correct horse" not in (out / "analyze.json").read_text()
    assert report["quality"]["psnr_secret"] > 28.0 and report["quality"]["psnr_stego"] > 35.0
    wrong = report["wrong_key"]
    assert wrong["wrong_key_psnr"] < 12.0
    best = report["keyless"]["best_residue_psnr"]
    if keyed:
        assert wrong["no_key_psnr"] < 12.0 and best < 10.0 and report["keyless"]["most_correlated_corr"] < 0.5
        assert report["thief"]["control_psnr"] is not None and report["key_reuse_psnr"] is not None
    else:  # the unkeyed stego image gives its secret away to a one-line read-out
        assert best > 25.0 and report["keyless"]["best_residue"] == "residue/13"
    detect = report["detect"]
    assert detect["test_crops"] == 2 * 3 and 0 <= detect["steganalyser"]["auroc"] <= 1
    for scores in (detect["steganalyser"], detect["pov_chi_square"]):
        assert scores["detectability"] == max(scores["auroc"], 1 - scores["auroc"])
        assert scores["inverted"] is (scores["auroc"] < 0.5)
    trivial = max(report["wrong_key"]["grey_psnr"], report["wrong_key"]["mean_colour_psnr"])
    assert report["trivial_baseline"]["psnr"] == trivial
    assert report["targets"]["thief_psnr"]["no_better_than_trivial"] is (report["thief"]["psnr"] <= trivial)
    assert set(report["targets"]) == {"wrong_key_psnr", "no_key_psnr", "best_keyless_psnr", "thief_psnr",
                                      "steganalyser_accuracy"}
    html = (out / "analyze.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 * 6 and "<table>" in html
    # nothing fetched from outside (the embedded pictures' base64 may spell "http" by chance)
    assert "http" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    md = (out / "analyze.md").read_text()
    assert "| learned thief (2 steps), PSNR / abs. r |" in md and md.count("\n|") >= 15


def test_steg_analyze_refuses_existing_outputs_and_bad_options(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "analyze.json").write_text("keep me")
    assert main(["analyze", "--out", str(out), "--size", "64", "--limit", "2", "--thief-steps", "0", "--detector-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert (out / "analyze.json").read_text() == "keep me" and not (out / "analyze.html").exists()
    assert main(["analyze", "--out", str(tmp_path / "x"), "--size", "100"]) == 2
    assert "multiple of 64" in capsys.readouterr().err
    assert main(["analyze", "--out", str(tmp_path / "x"), "--images", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err


def _synthetic_report(thief_psnr: float, steganalyser_auroc: float) -> dict:
    """The fields report_table reads, as analyze() writes them (figures chosen for the case under test)."""
    from steg.security.analysis import TARGETS

    na = float("nan")
    flat = {"wrong_key_psnr": 9.5, "no_key_psnr": None, "best_keyless_psnr": 10.7, "thief_psnr": thief_psnr,
            "steganalyser_accuracy": 0.5}
    trivial = {"name": "mean colour", "psnr": 12.90}  # mid-grey: 11.43
    targets = {name: {"value": flat[name], "bound": bound, "kind": kind, "met": None if flat[name] is None
                      else flat[name] <= bound} for name, (bound, kind) in TARGETS.items()}
    for name in ("wrong_key_psnr", "no_key_psnr", "best_keyless_psnr", "thief_psnr"):
        targets[name]["no_better_than_trivial"] = None if flat[name] is None else flat[name] <= trivial["psnr"]
    auroc = steganalyser_auroc
    return {
        "quality": {"psnr_stego": 36.0, "ssim_stego": 0.9, "psnr_secret": 35.0, "ssim_secret": 0.9},
        "wrong_key": {"no_key_psnr": na, "no_key_ssim": na, "wrong_key_psnr": 9.5, "wrong_key_ssim": 0.1,
                      "unrelated_psnr": 9.0, "unrelated_ssim": 0.1, "unrelated_corr": 0.1, "grey_psnr": 11.43,
                      "grey_ssim": 0.2, "mean_colour_psnr": 12.90},
        "keyless": {"best": "x", "best_psnr": 10.7, "most_correlated": "y", "most_correlated_corr": 0.1,
                    "best_residue": "r", "best_residue_psnr": 9.0, "best_bitplane": "b", "best_bitplane_psnr": 9.0,
                    "residual_x10_psnr": 9.0, "residual_x20_psnr": 9.0},
        "key_reuse_psnr": None, "keyed": True, "trivial_baseline": trivial, "targets": targets,
        "thief": {"steps": 10, "psnr": thief_psnr, "corr": 0.1},
        "detect": {"steganalyser": {"steps": 10, "accuracy": 0.5, "best_accuracy": 1.0, "auroc": auroc,
                                    "detectability": max(auroc, 1 - auroc), "inverted": auroc < 0.5},
                   "pov_chi_square": {"accuracy": 0.5, "best_accuracy": 0.5, "auroc": 0.5, "detectability": 0.5,
                                      "inverted": False}},
    }


def test_security_table_flags_an_inverted_detector_and_uses_the_best_trivial_baseline():
    from steg.security.analysis import report_table

    rows = {a: (b, c) for a, b, c in report_table(_synthetic_report(thief_psnr=13.00, steganalyser_auroc=0.0))}
    detector = next(v for k, v in rows.items() if k.startswith("steganalyser"))
    assert "0.000 (detectability 1.000, INVERTED)" in detector[0]  # a perfect detector, its sign flipped
    thief = next(v for k, v in rows.items() if k.startswith("learned thief"))
    assert "BETTER than mean colour (12.90 dB, the best trivial baseline)" in thief[1]
    rows = {a: (b, c) for a, b, c in report_table(_synthetic_report(thief_psnr=12.50, steganalyser_auroc=0.5))}
    thief = next(v for k, v in rows.items() if k.startswith("learned thief"))
    assert "no better than mean colour" in thief[1]  # above mid-grey (11.43) is not a leak when the mean colour scores more
    assert "INVERTED" not in next(v for k, v in rows.items() if k.startswith("steganalyser"))[0]
