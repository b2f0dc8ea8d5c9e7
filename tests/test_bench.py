"""The benchmark harness runs end to end on a tiny budget (no figure is asserted, only sanity)."""

import json
import math
import re

import pytest

from steg.bench import Target, build_parser, compose, fast_path, main, markdown, models, preset, resolve_targets
from steg.bench.quality import train_command


def test_models_come_from_the_registry():
    from steg.nets import ARCHITECTURES

    assert set(models()) == set(ARCHITECTURES) >= {"qim", "unet", "subpixel", "cnn", "baluja", "hinet"}


def test_default_targets_are_every_architecture_and_every_shipped_model():
    from steg.inference.files import shipped_models

    targets = resolve_targets(None)
    assert [t.arch for t in targets if t.arch] == list(models())
    from steg.bench.common import DIGITAL_TARGETS

    assert [t.shipped for t in targets if t.shipped] == shipped_models() + list(DIGITAL_TARGETS)
    assert "default" in shipped_models()
    assert resolve_targets("hinet,default,shipped:default") == [Target(arch="hinet"), Target(shipped="default")]


def test_hinet_trains_with_its_preset_and_the_bench_settings_win(tmp_path):
    """Quality runs of hinet get experiment=hinet_cpu (gradient clipping) before the bench's own
    settings, which win: every architecture trains on the same budget, beta and schedule."""
    opts = build_parser().parse_args(["--budget-min", "2", "--beta", "0.5", "--train-args", "data.batch_size=4"])
    cmd = train_command(opts, "hinet", tmp_path / "run")
    assert "experiment=hinet_cpu" in cmd and cmd.index("experiment=hinet_cpu") < cmd.index("beta=0.5")
    assert cmd[-1] == "data.batch_size=4" and "trainer.max_time=00:00:02:00" in cmd
    cfg = compose("hinet", overrides=[c for c in cmd[2:] if not c.startswith("hydra.")])
    assert cfg.trainer.gradient_clip_val == 1.0 and cfg.beta == 0.5 and not cfg.get("scheduler")
    assert cfg.model._target_ == "steg.nets.HiNet"
    assert preset("qim") is None and "experiment=" not in " ".join(train_command(opts, "qim", tmp_path))


def test_speed_and_inference_include_hinet_with_its_gradient_clipping(tmp_path):
    out = tmp_path / "bench"
    main(["--parts", "speed,inference", "--models", "hinet", "--tiny", "--seconds", "0.1", "--device", "cpu",
          "--inference-sizes", "64", "--repeats", "0", "--out", str(out)])
    report = json.loads((out / "bench.json").read_text())
    (row,) = report["speed"]["rows"]
    assert row["model"] == "hinet" and row["eager"]["gradient_clip_val"] == 1.0
    assert row["eager"]["images_per_s"] > 0 and math.isfinite(row["fast"]["psnr_secret"])
    (inference,) = report["inference"]["rows"]
    assert inference["model"] == "hinet" and inference["total_ms"] > 0
    md = (out / "bench.md").read_text()
    assert md.count("| `hinet` |") == 2


def test_fast_path_per_device():
    assert fast_path("cuda") == {"channels_last": True, "bf16": True, "compile": True, "fused": True}
    assert fast_path("cpu")["bf16"] is False  # bf16 measured 10-20x slower on an AVX2-only CPU


def test_speed_inference_and_cli_parts(tmp_path, capsys):
    out = tmp_path / "bench"
    main(["--parts", "speed,inference,cli", "--models", "qim", "--seconds", "0.1", "--device", "cpu",
          "--inference-sizes", "64,72", "--repeats", "0", "--out", str(out)])
    report = json.loads((out / "bench.json").read_text())
    (row,) = report["speed"]["rows"]
    eager, fast = row["eager"], row["fast"]
    assert eager["mode"] == "eager" and eager["channels_last"] is False and fast["channels_last"] is True
    assert eager["steps"] == fast["steps"] >= 4  # the same number of steps, for the quality check
    assert eager["timed_with"].startswith("lightning.Trainer")
    for r in (eager, fast):
        assert r["images_per_s"] > 0 and r["peak_mb"] >= r["baseline_mb"] > 0
        assert 20 < r["psnr_stego"] < 60 and math.isfinite(r["psnr_secret"])
    assert row["speedup"] == pytest.approx(fast["images_per_s"] / eager["images_per_s"])
    assert abs(row["delta_psnr_stego"]) < 0.5  # channels_last computes the same nets
    sizes = [r["size"] for r in report["inference"]["rows"]]
    assert sizes == [64, 72]  # 72 is not a multiple of 8: StegModel pads it
    assert all(r["total_ms"] > 0 and r["peak_mb"] > 0 for r in report["inference"]["rows"])
    md = (out / "bench.md").read_text()
    assert "| `qim` |" in md and "speed-up" in md and "72x72" in md
    cli = report["cli"]
    assert cli["runs"] == 3 and len(cli["hide_all_s"]) == 3 and 0 < cli["hide_s"] <= min(cli["hide_all_s"])
    assert "`steg hide`:" in md
    peaks = cli["peak_memory"]
    assert [r["size"] for r in peaks] == [64, 72] and all(r["hide_peak_mb"] > 50 for r in peaks)
    assert "| 72x72 | 0.01 |" in md
    assert md.strip() in capsys.readouterr().out


def test_quality_part_trains_and_evaluates(tmp_path):
    out, runs = tmp_path / "bench", tmp_path / "runs"
    main(["--parts", "quality", "--models", "qim", "--budget-min", "0.2", "--eval-size", "64",
          "--runs-dir", str(runs), "--out", str(out),
          "--train-args", "model.width=8 model.depth=1 data.train_repeats=2 data.val_tiles=4 data.batch_size=4"])
    report = json.loads((out / "bench.json").read_text())
    (row,) = report["quality"]["rows"]
    assert row["model"] == "qim" and row["pairs"] == 4 and row["epochs"] >= 1
    assert 35 < row["psnr_stego"] < 40  # period 13: at most 6 levels off, whatever the training
    assert (runs / "qim_0.2min" / "eval.json").is_file()
    assert "Quality at a budget of 0.2 min" in markdown(report)
    # the bar every net is judged against, measured on the same photos: the digital method and the shipped net
    refs = {r["model"]: r for r in report["quality"]["references"]}
    assert set(refs) == {"digital:default", "default", "learned"} and all(r["pairs"] == 4 for r in refs.values())
    # the shipped learned net, keyed, on the photos shrunk to 64x64 (29.9 dB seen; 33.0 dB at 256 px, where
    # tests/test_learned.py checks the aim); the additive nets reveal under 22 dB
    assert refs["learned"]["psnr_stego"] > 34 and refs["learned"]["psnr_secret"] > 27
    assert refs["digital:default"]["psnr_stego"] > 45 and refs["digital:default"]["bits_per_value"] > 0
    assert refs["digital:default"]["psnr_stego"] > refs["default"]["psnr_stego"] > 35
    assert "`digital:default` (reference, nothing trained" in markdown(report)


@pytest.mark.parametrize("args, message", [
    (["--models", "nope"], "conf/model/nope.yaml"),
    (["--parts", "speed,fly"], "unknown part 'fly'"),
    (["--fast", "bf16+turbo"], "mode 'bf16+turbo'"),
    (["--models", "shipped:nope"], "steg/pretrained/nope.safetensors"),
    (["--parts", "robustness", "--attacks", "jpeg:90,jpeg:200"], "--attacks: attack 'jpeg:200'"),
    (["--parts", "security", "--eval-size", "100"], "--eval-size must be a positive multiple of 64"),
    (["--parts", "security", "--thief-steps", "-1"], "--thief-steps and --detector-steps must be >= 0"),
])
def test_bad_arguments_are_one_line_errors(args, message, tmp_path):
    with pytest.raises(SystemExit, match=re.escape(message)):
        main([*args, "--out", str(tmp_path)])


def test_markdown_shows_gpu_utilisation_when_measured():
    def mode(ips, util):
        return {"parameters": 1e6, "images_per_s": ips, "peak_mb": 100.0, "steps": 10,
                "psnr_stego": 30.0, "psnr_secret": 20.0, "gpu_utilisation": util}

    report = {"environment": {"device_name": "GPU X", "threads": 1, "torch": "2", "command": "c"},
              "speed": {"size": 64, "batch": 16, "fast_path": {"bf16": True, "compile": False},
                        "rows": [{"model": "qim", "eager": mode(100.0, 41.5), "fast": mode(300.0, 87.0),
                                  "speedup": 3.0, "delta_psnr_stego": 0.1, "delta_psnr_secret": -0.1}]}}
    md = markdown(report)
    assert "(fast path: bf16)" in md and "| **3.00x** |" in md
    assert "GPU utilisation while timing, eager / fast: `qim` 42% / 87%" in md
    for row in report["speed"]["rows"]:
        row["eager"]["gpu_utilisation"] = row["fast"]["gpu_utilisation"] = None
    assert "GPU utilisation" not in markdown(report)  # a CPU run has none
