"""Why learned nets stop at ~22 dB revealed (issue 21 section 1): train a grid of runs at equal steps, measure each.

For each row of the grid (:data:`ROWS`: a name and its ``python train.py`` overrides) this
script trains ``python train.py`` as a subprocess for ``--steps`` optimizer steps (64 px
crops, batch 16, seed 0, CSV logger, offline W&B, no time limit) into ``OUT/ROW``, skipping
rows whose folder already holds a finished run of that many steps (the grid resumes), then
evaluates the run's LAST checkpoint in fp32 without a key on the 4 held-out photos: the 64x64
validation tiles (32 pairs) and the photos at 256x256 (image i hides image i+1, as
``steg eval --covers heldout --size 256``). Per set, mean over images:

- ``stego``: PSNR of the 8-bit stego image against the cover;
- ``revealed``: PSNR of the secret revealed from the 8-bit stego (what a user gets);
- ``revealed_float``: revealed from the float stego, never rounded nor clamped (the
  difference is the rounding's share of the loss);
- ``rms``: residual RMS in 8-bit levels, ``rms(255 * (float stego - cover))``;
- ``uncoded``: :func:`uncoded_psnr`, the revealed PSNR an uncoded (additive, linear) scheme
  with that residual power would reach if 8-bit rounding were the only noise;
- ``cover_known``: :func:`cover_known_psnr`, how much of the secret the residual carries
  linearly when the cover is known.

Revealed images are rounded to 8 bits before they are measured. Writes ``OUT/table.md``,
``OUT/table.csv`` and ``OUT/revealed_vs_stego.png`` (after every row: a grid stopped half way
still has them for its finished rows); each training's output goes to
``OUT/logs/ROW.log``. Rows whose model or experiment has no ``conf/`` file are skipped with a
line saying so.

    PYTHONPATH=$PWD nice -n 5 python experiments/learned/diagnose.py --steps 500 --out /work/runs/diag
    PYTHONPATH=$PWD python experiments/learned/diagnose.py --steps 500 --out /work/runs/diag --runs u_base qim
    PYTHONPATH=$PWD python experiments/learned/diagnose.py --tiny --out /tmp/diag   # 2 rows, 2 steps, tiny nets
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # this checkout's steg, whatever is installed
    sys.path.insert(0, str(ROOT))

from steg.io import write_text  # noqa: E402

#: Every row is ``beta=0.75 scheduler=none`` unless its overrides say otherwise (the hinet rows keep
#: experiment=hinet_cpu's own beta, learning rate, schedule and divergence guard).
COMMON = ("beta=0.75", "scheduler=none")
#: The grid: row name -> (overrides, what the row changes). Order: the table's order.
ROWS: dict[str, tuple[tuple[str, ...], str]] = {
    "u_base": (("model=unet",), "unet, ste rounding, MSE, beta 0.75, constant lr"),
    "u_noise": (("model=unet", "module.rounding=noise"), "uniform-noise rounding"),
    "u_both": (("model=unet", "module.rounding=both"), "half ste, half noise"),
    "u_none": (("model=unet", "module.rounding=none"), "no rounding in training"),
    "u_beta0.25": (("model=unet", "beta=0.25"), "beta 0.25"),
    "u_beta1.5": (("model=unet", "beta=1.5"), "beta 1.5"),
    "u_beta3": (("model=unet", "beta=3"), "beta 3"),
    "u_c35": (("model=unet", "module.stego_psnr=35", "beta=1"), "stego >= 35 dB constraint, beta 1"),
    "u_logmse": (("model=unet", "loss=logmse"), "log-MSE loss"),
    "u_charb": (("model=unet", "loss=charbonnier"), "Charbonnier loss"),
    "u_warmcos": (("model=unet", "scheduler=warmup_cosine"), "warm-up 5% + cosine"),
    "u_cos": (("model=unet", "scheduler=cosine"), "cosine"),
    "u_w96": (("model=unet", "model.width=96"), "width 96 (2x)"),
    "h_base": (("experiment=hinet_cpu",), "hinet_cpu preset (beta 0.5, lr 1e-4, cosine, guard)"),
    "h_noise": (("experiment=hinet_cpu", "module.rounding=noise"), "uniform-noise rounding"),
    "h_none": (("experiment=hinet_cpu", "module.rounding=none"), "no rounding in training"),
    "h_beta1": (("experiment=hinet_cpu", "beta=1"), "beta 1"),
    "h_beta2": (("experiment=hinet_cpu", "beta=2"), "beta 2"),
    "qim": (("model=qim",), "fixed lattice code (period 13), learned decoder"),
    "learned": (("model=learned",), "the learned architecture of issue 21 section 2"),
}
#: The rows ``--tiny`` runs (the test).
TINY_ROWS = ("u_base", "u_c35")
#: One 8-bit level's rounding-noise power, in levels^2 (uniform on [-0.5, 0.5]).
Q2 = 1.0 / 12.0
#: Columns of table.csv, per evaluation set (suffix _<size>).
FIGURES = ("stego", "revealed", "revealed_float", "rms", "uncoded", "cover_known")


def uncoded_psnr(residual_rms: torch.Tensor | float, sigma_s: torch.Tensor | float) -> torch.Tensor:
    """The revealed PSNR (dB) of uncoded analog hiding when 8-bit rounding is the only noise.

    An uncoded scheme adds a linear copy of the secret (std ``sigma_s``, [0, 1] units) to the
    cover with power ``r^2`` (``residual_rms`` = r, in 8-bit levels); the reveal sees it plus
    rounding noise of power ``q^2 = 1/12`` level^2 and estimates the secret linearly (the best
    linear estimate, cover known or cancelled). Its error is ``sigma_s^2 q^2 / (r^2 + q^2)``, so

        PSNR_unc = 10 log10((r^2 + q^2) / (sigma_s^2 q^2))

    A reveal above this line codes the secret (exploits its redundancy); one below it loses
    more than the rounding explains (the cover's own content interferes). Shapes: broadcast.

    >>> round(float(uncoded_psnr(4.5, 0.25)), 2)  # 35 dB stego: ~4.5 levels of residual
    35.92
    """
    r2 = torch.as_tensor(residual_rms, dtype=torch.float64) ** 2
    s2 = torch.as_tensor(sigma_s, dtype=torch.float64) ** 2
    return 10.0 * torch.log10((r2 + Q2) / (s2 * Q2))


def residual_rms_for_stego(stego_psnr: torch.Tensor | float) -> torch.Tensor:
    """The residual RMS (levels) whose 8-bit stego image has PSNR ``stego_psnr`` (dB): rounding adds q^2.

    Stego MSE in levels^2 = r^2 + q^2, so r = sqrt(255^2 10^(-P/10) - q^2) (0 where rounding alone
    exceeds it). For the uncoded line across a range of stego PSNRs.
    """
    mse = 255.0**2 * 10.0 ** (-torch.as_tensor(stego_psnr, dtype=torch.float64) / 10.0)
    return (mse - Q2).clamp_min(0.0).sqrt()


def cover_known_psnr(residual: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) per image of the least-squares fit ``secret ~ a * residual + b`` per image and channel.

    ``residual`` = float stego - cover ([0, 1] units). It measures how much of the secret
    the residual carries linearly when the cover is known: if high while the reveal is
    low, the cover masks the copy. (B, C, H, W) x2 -> (B,), via ``torch.linalg.lstsq``.
    """
    b, c = secret.shape[:2]
    if not bool(torch.isfinite(residual).all()):  # a diverged run: no fit (LAPACK refuses NaN), NaN figures
        return torch.full((b,), float("nan"))
    x = residual.double().reshape(b * c, -1, 1)
    design = torch.cat([x, torch.ones_like(x)], dim=-1)
    y = secret.double().reshape(b * c, -1, 1)
    coef = torch.linalg.lstsq(design, y, driver="gelsd").solution
    fit = (design @ coef).reshape(secret.shape)
    from steg.metrics import psnr_per_image

    return psnr_per_image(fit.float(), secret.float())


def _row_figures(net, cover: torch.Tensor, secret: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image (B,): the :data:`FIGURES` of ``net`` on these pairs, fp32, no key."""
    from steg.metrics import psnr_per_image
    from steg.quantize import quantize

    with torch.no_grad():
        float_stego = net.hide_with_key(cover, secret).float()
        stego = quantize(float_stego)
        revealed = quantize(net.reveal_with_key(stego))
        revealed_float = quantize(net.reveal_with_key(float_stego))
    residual = float_stego - cover
    rms = (255.0 * residual).square().mean(dim=(1, 2, 3)).sqrt()
    sigma_s = secret.std(dim=(1, 2, 3))
    return {"stego": psnr_per_image(stego, cover), "revealed": psnr_per_image(revealed, secret),
            "revealed_float": psnr_per_image(revealed_float, secret), "rms": rms,
            "uncoded": uncoded_psnr(rms, sigma_s).float(), "cover_known": cover_known_psnr(residual, secret),
            "sigma_s": sigma_s}


def heldout_sets(out: Path, tile: int, size: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """The held-out (covers, secrets), (N, 3, S, S) in [0, 1]: ``tile`` = validation tiles, ``size`` = whole photos.

    The tiles are those validation uses (:class:`steg.data.SampleDataModule`, seed 0); the photos
    are ``steg samples`` of the 4 held-out photos in ``out/heldout`` paired as ``steg eval`` pairs
    them (:func:`steg.inference.evaluation.folder_pairs`), centre-cropped to ``size``.
    """
    from steg.bench.common import heldout_images
    from steg.data import SampleDataModule
    from steg.inference.evaluation import folder_pairs
    from steg.io import load_image, square_image, to_tensor

    data = SampleDataModule(image_size=tile, channels=3, batch_size=16, num_workers=0, seed=0)
    data.setup("fit")
    pairs = [data.val_dataset[i] for i in range(len(data.val_dataset))]
    tiles = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
    folder = heldout_images(argparse.Namespace(images=None, runs_dir=str(out)))
    photos = [[to_tensor(square_image(load_image(p, 3), size)) for p in pair] for pair in folder_pairs(folder)]
    whole = (torch.stack([p[0] for p in photos]), torch.stack([p[1] for p in photos]))
    return {tile: tiles, size: whole}


def evaluate(checkpoint: Path, sets: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """The :data:`FIGURES` of a run's checkpoint on each held-out set, mean over images: ``{figure_size: value}``."""
    from steg.training.module import StegModule

    module = StegModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    net = module.net.float().eval()
    result: dict[str, float] = {}
    for size, (covers, secrets) in sets.items():
        figures = [_row_figures(net, covers[i : i + 8], secrets[i : i + 8]) for i in range(0, len(covers), 8)]
        for name in (*FIGURES, "sigma_s"):
            result[f"{name}_{size}"] = float(torch.cat([f[name] for f in figures]).double().mean())
    return result


def _conf_missing(overrides: tuple[str, ...]) -> str | None:
    """The first ``model=X`` / ``experiment=X`` override without a ``conf/GROUP/X.yaml``, as a message."""
    for item in overrides:
        group, _, value = item.partition("=")
        if group in ("model", "experiment") and not (ROOT / "conf" / group / f"{value}.yaml").is_file():
            return f"{group}={value}: no conf/{group}/{value}.yaml in this checkout"
    return None


def _tiny_overrides(overrides: tuple[str, ...]) -> list[str]:
    """Overrides that shrink the row's net to its ``tiny()`` size (seconds-fast)."""
    from omegaconf import OmegaConf

    from steg.nets import net_class

    model = None
    for item in overrides:
        group, _, value = item.partition("=")
        if group == "model":
            model = value
        elif group == "experiment":
            preset = (ROOT / "conf" / "experiment" / f"{value}.yaml").read_text()
            model = next((line.split(":", 1)[1].split("#")[0].strip() for line in preset.splitlines()
                          if line.strip().startswith("- override /model:")), model)
    if model is None:
        return []
    tiny = net_class(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"))).tiny()
    return [f"model.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in tiny.items()]


def _finished(run_dir: Path, steps: int, overrides: list[str]) -> dict[str, Any] | None:
    """The row record if ``run_dir`` holds a finished run of these overrides and steps, else None."""
    record = run_dir / "diag_row.json"
    if not record.is_file() or not (run_dir / "checkpoints" / "last.ckpt").is_file():
        return None
    saved = json.loads(record.read_text())
    return saved if saved.get("steps") == steps and saved.get("overrides") == overrides else None


def train_row(name: str, overrides: list[str], out: Path, steps: int) -> dict[str, Any]:
    """Run ``python train.py`` for one row into ``out/name`` (unless finished); its record (wall time, status)."""
    run_dir = out / name
    done = _finished(run_dir, steps, overrides)
    if done is not None:
        return {**done, "skipped": True}
    if run_dir.exists():  # an unfinished run of this script: start the row again
        shutil.rmtree(run_dir)
    log = out / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
    start = time.monotonic()
    with log.open("w") as handle:
        code = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - start
    report = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    status = report.get("status")
    if code != 0 or status != "finished" or not (run_dir / "checkpoints" / "last.ckpt").is_file():
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"row {name}: train.py exited {code} (status {status}): {tail[0]} (see {log})")
    if report.get("steps") != steps:
        raise RuntimeError(f"row {name}: trained {report.get('steps')} steps, not {steps} (see {log})")
    record = {"row": name, "overrides": overrides, "steps": steps, "wall_s": round(wall, 1),
              "train_s": report.get("wall_time_s"), "status": status}
    write_text(run_dir / "diag_row.json", json.dumps(record, indent=1))
    return record


def row_overrides(name: str, steps: int, tiny: bool) -> list[str]:
    """The full ``train.py`` command line of a row (its own overrides win over :data:`COMMON`)."""
    own = ROWS[name][0]
    keys = {o.partition("=")[0] for o in own}
    hinet = any(o.startswith("experiment=") for o in own)
    common = [] if hinet else [o for o in COMMON if o.partition("=")[0] not in keys]
    size, batch = (32, 4) if tiny else (64, 16)
    fixed = ["logger=csv", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
             f"trainer.max_steps={steps}", "trainer.max_epochs=-1", "trainer.max_time=null",
             f"data.image_size={size}", f"data.batch_size={batch}", "seed=0"]
    if tiny:
        fixed += ["data.train_repeats=1", "data.val_tiles=8", *_tiny_overrides(own)]
    return [*own, *common, *fixed]


def write_tables(rows: list[dict[str, Any]], out: Path, sizes: tuple[int, int]) -> None:
    """``out/table.csv`` (every figure) and ``out/table.md`` (the reading table)."""
    tile, size = sizes
    rows = sorted(rows, key=lambda row: list(ROWS).index(row["row"]))  # the grid's order, whatever the run order
    columns = ["row", "what", "overrides", "steps", "wall_s", "train_s"] + [f"{f}_{s}" for s in sizes for f in FIGURES] \
        + [f"sigma_s_{size}"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "overrides": " ".join(row["overrides"]),
                         **{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()
                            if k not in ("overrides", "row", "what")}})
    write_text(out / "table.csv", buffer.getvalue())
    head = (f"| row | what | wall (min) | {tile} px stego / revealed | {size} px stego | revealed (8-bit) | "
            f"revealed (float stego) | residual RMS (levels) | uncoded line | cover-known |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        lines.append(
            f"| `{row['row']}` | {row['what']} | {row['wall_s'] / 60:.1f} | "
            f"{row[f'stego_{tile}']:.2f} / {row[f'revealed_{tile}']:.2f} | {row[f'stego_{size}']:.2f} | "
            f"**{row[f'revealed_{size}']:.2f}** | {row[f'revealed_float_{size}']:.2f} | {row[f'rms_{size}']:.2f} | "
            f"{row[f'uncoded_{size}']:.2f} | {row[f'cover_known_{size}']:.2f} |")
    steps = sorted({row["steps"] for row in rows})
    lines.append("")
    lines.append(f"{'/'.join(map(str, steps))} steps each; PSNRs in dB, mean over images; stego and revealed "
                 f"images rounded to 8 bits; {size} px: the 4 held-out photos (image i hides image i+1), "
                 f"{tile} px: the 32 validation tile pairs.")
    write_text(out / "table.md", "\n".join(lines) + "\n")


def plot(rows: list[dict[str, Any]], out: Path, size: int) -> None:
    """``out/revealed_vs_stego.png``: revealed (8-bit) against stego PSNR at ``size``, the uncoded line,
    the cover-known points."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from steg.report.plots import save_figure

    fig = Figure(figsize=(8, 6))
    ax = fig.add_subplot()
    rows = [row for row in rows if math.isfinite(row[f"stego_{size}"])]  # stego = cover (a net that hides nothing)
    stego = [row[f"stego_{size}"] for row in rows]
    sigma = float(torch.tensor([row[f"sigma_s_{size}"] for row in rows]).mean())
    low, high = min(stego + [25.0]) - 2, max(stego + [45.0]) + 2
    grid = torch.linspace(low, high, 100)
    ax.plot(grid, uncoded_psnr(residual_rms_for_stego(grid), sigma), "k--",
            label=f"uncoded line (rounding the only noise, sigma_s = {sigma:.3f})")
    for row in rows:
        colour = "tab:blue" if row["row"].startswith("u_") else "tab:orange" if row["row"].startswith("h_") \
            else "tab:green"
        ax.scatter(row[f"stego_{size}"], row[f"revealed_{size}"], color=colour)
        ax.annotate(row["row"], (row[f"stego_{size}"], row[f"revealed_{size}"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
        ax.scatter(row[f"stego_{size}"], row[f"cover_known_{size}"], color=colour, marker="x", alpha=0.6)
    ax.scatter([], [], color="gray", label="revealed from the 8-bit stego (o)")
    ax.scatter([], [], color="gray", marker="x", label="cover-known linear bound (x)")
    ax.set_xlabel(f"stego PSNR (dB, 8-bit, {size} px held-out photos)")
    ax.set_ylabel("secret PSNR (dB)")
    ax.set_title(f"revealed vs stego at {rows[0]['steps']} steps (blue: unet, orange: hinet, green: references)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out / "revealed_vs_stego.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500, help="optimizer steps per row (default 500)")
    p.add_argument("--runs", nargs="+", metavar="NAME", help=f"rows to run, in this order (the table keeps the "
                   f"grid's order; default: all): "
                   f"{' '.join(ROWS)}")
    p.add_argument("--out", type=Path, required=True, help="folder of the runs and the table")
    p.add_argument("--tiny", action="store_true", help=f"a seconds-fast test: rows {' '.join(TINY_ROWS)} "
                   "(unless --runs), 2 steps, tiny nets, 32 px tiles, 64 px photos")
    args = p.parse_args(argv)
    names = args.runs or (list(TINY_ROWS) if args.tiny else list(ROWS))
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"error: --runs: unknown row(s) {', '.join(unknown)}; rows: {' '.join(ROWS)}", file=sys.stderr)
        return 2
    steps = 2 if args.tiny else args.steps
    if steps < 1:
        print(f"error: --steps must be >= 1, got {steps}", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    sizes = (32, 64) if args.tiny else (64, 256)
    args.out.mkdir(parents=True, exist_ok=True)
    sets = heldout_sets(args.out, *sizes)
    rows: list[dict[str, Any]] = []
    bar = tqdm(names, desc="diagnosis", unit="row", file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        missing = _conf_missing(ROWS[name][0])
        if missing:
            tqdm.write(f"skipping row {name}: {missing}", file=sys.stderr)
            continue
        record = train_row(name, row_overrides(name, steps, args.tiny), args.out, steps)
        figures = evaluate(args.out / name / "checkpoints" / "last.ckpt", sets)
        rows.append({**record, "what": ROWS[name][1], **figures})
        tqdm.write(f"{name}: {sizes[1]} px stego {figures[f'stego_{sizes[1]}']:.2f} dB, revealed "
                   f"{figures[f'revealed_{sizes[1]}']:.2f} dB ({record['wall_s'] / 60:.1f} min"
                   f"{', already trained' if record.get('skipped') else ''})", file=sys.stderr)
        write_tables(rows, args.out, sizes)  # after every row: a partial grid is still a table and a plot
        plot(rows, args.out, sizes[1])
    if not rows:
        print("error: no row could run", file=sys.stderr)
        return 1
    print(f"wrote {args.out / 'table.md'}, table.csv and revealed_vs_stego.png ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
