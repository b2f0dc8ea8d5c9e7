"""The ``robustness`` part: every architecture and shipped model under real distortions.

For each target (an architecture's quality-run checkpoint, or a shipped model)
:func:`steg.inference.evaluation.evaluate` with ``attacks`` (what ``steg eval --attack``
runs: Pillow's JPEG and WebP encoders, Pillow resampling, seeded noise, see
:mod:`steg.distortions.attacks`) hides the held-out pairs, distorts each 8-bit stego image
each way and reveals it again; the table holds the revealed secret's PSNR per
attack beside the clean one. Keyed architectures hide and reveal with the bench
key, as in the security part.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from steg.bench.common import BENCH_KEY, Target, digital_payload, heldout_images
from steg.bench.quality import each_model

__all__ = ["DEFAULT_ATTACKS", "eval_command", "part_robustness"]

#: The attacks of issue 12 (``--attacks``).
DEFAULT_ATTACKS = "jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9"


def eval_command(source: str, key: str | None, images: Path, size: int, attacks: list) -> str:
    """The ``steg eval`` command line that measures the same figures."""
    argv = ["eval", "--model", source, *(["--key", key] if key else []), "--covers", str(images),
            "--size", str(size), "--attack", ",".join(a.spec for a in attacks)]
    return "steg " + shlex.join(argv)


def part_robustness(opts, targets: list[Target], progress) -> dict[str, Any]:
    """``steg eval --attack`` of every target that has a model: one progress unit each."""
    from steg.inference.evaluation import evaluate, folder_pairs

    images = heldout_images(opts)
    pairs = folder_pairs(images)
    rows, skipped = [], []
    for target, source, where, model, key in each_model(opts, targets, progress, "robustness", skipped):
        progress.set_postfix_str(target.label)
        result = evaluate(model, pairs, size=opts.eval_size, attacks=opts.attacks, key=key)
        rows.append({"model": target.name, "kind": target.kind, "source": where, "keyed": key is not None,
                     "architecture": model.net.arch_config.get("name"), **digital_payload(model), "pairs": result.n,
                     "psnr_stego": result.summary["psnr_stego"], "attacks": result.attack_summary,
                     "command": eval_command(source, key, images, opts.eval_size, opts.attacks)})
    return {"images": str(images), "size": opts.eval_size, "attacks": [a.spec for a in opts.attacks],
            "key": BENCH_KEY, "budget_min": opts.budget_min, "rows": rows, "skipped": skipped}
