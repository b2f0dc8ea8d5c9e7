"""The ``security`` part: every architecture and shipped model on the figures of ``steg analyze``.

For each target (an architecture's quality-run checkpoint, or a shipped model)
:func:`steg.security.analysis.analyze` runs on the held-out pairs (sorted, image i hides
image i+1, centre crops of ``--eval-size``, stego quantized to 8 bits), with the
bench key (:data:`steg.bench.common.BENCH_KEY`) where the architecture has a
keyed mode. Each analysis is written by :func:`steg.security.analysis.write_report` into
``--runs-dir/security/NAME`` (JSON, table, HTML with pictures) with the
``steg analyze`` command that reproduces it; the bench keeps the headline
figures: wrong-key and no-key PSNR, the best keyless attack, the learned thief,
the steganalyser's and the pairs-of-values chi-square's accuracy and AUROC.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from steg.bench.common import BENCH_KEY, Target, digital_payload, heldout_images, heldout_paths
from steg.bench.quality import each_model

__all__ = ["analyze_command", "headline", "part_security"]


def analyze_command(source: str, key: str | None, images: Path, out: Path, opts) -> str:
    """The ``steg analyze`` command line that computes the same analysis."""
    argv = ["analyze", "--model", source, *(["--key", key] if key else []), "--images", str(images),
            "--out", str(out), "--size", str(opts.eval_size), "--thief-steps", str(opts.thief_steps),
            "--detector-steps", str(opts.detector_steps), "--seed", str(opts.seed)]
    return "steg " + shlex.join(argv)


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of one ``steg analyze`` report that go into the security table (None where not measured)."""
    q, w, k, t, d = (report.get(x) or {} for x in ("quality", "wrong_key", "keyless", "thief", "detect"))
    s, p = d.get("steganalyser") or {}, d.get("pov_chi_square") or {}
    return {
        "psnr_stego": q.get("psnr_stego"), "psnr_secret": q.get("psnr_secret"),
        "wrong_key_psnr": w.get("wrong_key_psnr"), "no_key_psnr": w.get("no_key_psnr"),
        "grey_psnr": w.get("grey_psnr"), "unrelated_psnr": w.get("unrelated_psnr"),
        "best_keyless": k.get("best"), "best_keyless_psnr": k.get("best_psnr"),
        "thief_psnr": t.get("psnr"), "thief_steps": t.get("steps"),
        "steganalyser_steps": s.get("steps"), "steganalyser_accuracy": s.get("accuracy"),
        "steganalyser_best_accuracy": s.get("best_accuracy"), "steganalyser_auroc": s.get("auroc"),
        "chi_square_accuracy": p.get("accuracy"), "chi_square_best_accuracy": p.get("best_accuracy"),
        "chi_square_auroc": p.get("auroc"),
        "targets_met": {name: v.get("met") for name, v in (report.get("targets") or {}).items()},
        "seconds": report.get("seconds"),
    }


def _folder_name(target: Target, opts) -> str:
    return f"{target.arch}_{opts.budget_min:g}min" if target.arch else f"shipped-{target.shipped}"


def part_security(opts, targets: list[Target], progress) -> dict[str, Any]:
    """``steg analyze`` of every target that has a model: one progress unit each."""
    from steg.security.analysis import analyze, load_pairs, write_report

    images = heldout_images(opts)
    paths = heldout_paths(opts)
    rows, skipped = [], []
    for target, source, where, model, key in each_model(opts, targets, progress, "security", skipped):
        out = Path(opts.runs_dir) / "security" / _folder_name(target, opts)
        result = analyze(model, load_pairs(paths, opts.eval_size, model.channels), key=key,
                         thief_steps=opts.thief_steps, detector_steps=opts.detector_steps, seed=opts.seed,
                         log=lambda text: progress.set_postfix_str(f"{target.label}: {text}"))
        command = analyze_command(source, key, images, out, opts)
        result.report["command"] = command
        write_report(result, out)
        rows.append({"model": target.name, "kind": target.kind, "source": where, "keyed": key is not None,
                     "architecture": model.net.arch_config.get("name"), **digital_payload(model), "pairs": result.report.get("n"),
                     **headline(result.report), "command": command, "report_dir": str(out)})
    return {"images": str(images), "size": opts.eval_size, "thief_steps": opts.thief_steps,
            "detector_steps": opts.detector_steps, "key": BENCH_KEY, "seed": opts.seed,
            "budget_min": opts.budget_min, "rows": rows, "skipped": skipped}
