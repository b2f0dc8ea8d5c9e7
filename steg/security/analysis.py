"""How secure is a model: leakage and detectability on held-out pairs.

``analyze(model, pairs, key=...)`` hides every pair (stego quantized to 8 bits,
exactly what ``steg hide`` saves) and measures, against the real secret:

- **quality**: stego vs cover and revealed (right key) vs secret;
- **wrong key / no key**: what ``reveal`` returns with a random wrong key and
  with no key, beside two baselines that know nothing: an unrelated photograph
  (the pair's cover) and a mid-grey image;
- **keyless attacks** (:func:`steg.security.leakage.keyless_attacks`): the best PSNR of
  any residue period, bit plane or amplified stego-minus-cover residual;
- **key reuse**: one known secret hidden with the same key (qim, keyed only);
- **a learned thief** (:func:`steg.security.leakage.train_thief`) trained on stego
  images the attacker makes from the training photos with the public model and
  random keys of their own (the keyed dither for qim, the keyed scrambling of
  :mod:`steg.security.scramble` for any other keyed net), evaluated on the user's stego images; with a key, a
  control thief trained and tested without keys shows what the thief can learn
  when nothing is hidden from it;
- **detectability**: a steganalysis CNN (:mod:`steg.security.steganalysis`) trained
  cover-vs-stego on 64x64 crops of the training photos, evaluated on 64x64 crops
  of the held-out pairs (accuracy and AUROC, torchmetrics), and the classical
  pairs-of-values chi-square test.

:func:`write_report` writes ``analyze.json``, ``analyze.md`` (the table) and a
self-contained ``analyze.html`` with pictures. Figures are means over pairs.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torchmetrics.functional import pearson_corrcoef
from torchmetrics.functional.classification import binary_accuracy, binary_auroc, binary_roc

from steg.device import placement
from steg.security.leakage import keyless_attacks, train_thief
from steg.security.keys import random_key, resolve_key
from steg.metrics import PSNR_AVERAGE, psnr, ssim_per_image
from steg.quantize import quantize
from steg.security.steganalysis import detection_scores, pov_chi_square, train_steganalyser

__all__ = ["REPORT_FILES", "TARGETS", "Analysis", "load_pairs", "analyze", "report_table", "write_report"]

#: Files written by :func:`write_report`.
REPORT_FILES = ("analyze.json", "analyze.md", "analyze.html")
#: The issue's targets: figure -> (bound, "max" or "min").
TARGETS = {
    "wrong_key_psnr": (10.0, "max"),
    "no_key_psnr": (10.0, "max"),
    "best_keyless_psnr": (10.0, "max"),
    "thief_psnr": (12.0, "max"),
    "steganalyser_accuracy": (0.65, "max"),
}
PICTURE_ROWS = 4


@dataclass
class Analysis:
    """``report``: JSON-ready figures; ``pictures``: per pair, name -> (C, H, W) image for the HTML page."""

    report: dict[str, Any]
    pictures: list[dict[str, torch.Tensor]] = field(default_factory=list)


def load_pairs(paths: Sequence[Path], size: int, channels: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, cover, secret) with image i hiding image i+1 (cyclic), each (1, C, size, size) centre crops."""
    from steg.io import square_image
    from steg.io import load_image, to_tensor

    if len(paths) < 2:
        raise ValueError(f"need at least 2 images to make pairs (image i hides image i+1), got {len(paths)}")
    imgs = [to_tensor(square_image(load_image(p, channels), size)).unsqueeze(0) for p in paths]
    names = [Path(p).stem for p in paths]
    n = len(imgs)
    return [(f"{names[i]}<-{names[(i + 1) % n]}", imgs[i], imgs[(i + 1) % n]) for i in range(n)]


def _ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(ssim_per_image(pred, target).mean())


def _corr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """|Pearson correlation| over all values (0 for a constant image): does ``pred`` carry the secret at all?"""
    pred, target = pred.flatten().double(), target.flatten().double()
    if pred.std() == 0 or target.std() == 0:
        return 0.0
    return abs(float(pearson_corrcoef(pred, target)))


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


def _mean_colour(channels: int) -> torch.Tensor:
    """(1, C, 1, 1) mean colour of the training photos: the best guess of one that sees no stego image."""
    from steg.data import sample_photo_paths
    from steg.io import load_image, to_tensor

    means = [to_tensor(load_image(p, channels)).mean(dim=(1, 2)) for p in sample_photo_paths("train")]
    return torch.stack(means).mean(0).view(1, channels, 1, 1)


class _Crops:
    """Random (B, C, crop, crop) crops of training photos (torch RNG seeded: not key material).

    The photos are decoded once and kept (float32) on ``device``, the attacked
    net's, so a batch is cut there without a host-to-device copy per step.
    """

    def __init__(self, channels: int, crop: int, seed: int, device: torch.device | str = "cpu"):
        from steg.data import sample_photo_paths
        from steg.io import load_image, to_tensor

        self.photos = [to_tensor(load_image(p, channels)) for p in sample_photo_paths("train")]
        self.photos = [p.to(device) for p in self.photos if min(p.shape[-2:]) >= crop]
        self.crop = crop
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, batch: int) -> torch.Tensor:
        out = []
        for _ in range(batch):
            photo = self.photos[int(torch.randint(len(self.photos), (1,), generator=self.gen))]
            y = int(torch.randint(photo.shape[-2] - self.crop + 1, (1,), generator=self.gen))
            x = int(torch.randint(photo.shape[-1] - self.crop + 1, (1,), generator=self.gen))
            out.append(photo[:, y : y + self.crop, x : x + self.crop])
        return torch.stack(out)


def _tiles(x: torch.Tensor, crop: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * (H//crop) * (W//crop), C, crop, crop) non-overlapping tiles."""
    b, c, h, w = x.shape
    x = x[..., : h - h % crop, : w - w % crop]
    x = x.unfold(2, crop, crop).unfold(3, crop, crop)  # (B, C, nh, nw, crop, crop)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, crop, crop)


def analyze(
    model,
    pairs: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    key: Any = None,
    thief_steps: int = 300,
    detector_steps: int = 300,
    batch: int = 8,
    crop: int = 64,
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
) -> Analysis:
    """Measure leakage and detectability of ``model`` (a :class:`steg.inference.model.StegModel`).

    Args:
        pairs: (name, cover, secret) with (1, C, H, W) images, H and W multiples
            of ``crop`` for the detection tiles (see :func:`load_pairs`).
        key: the user's key (passphrase or DerivedKey), or None.
        thief_steps, detector_steps: Adam steps of the thief and the steganalyser
            (0 skips them); ``batch`` crops of ``crop`` pixels a step.
    """
    start = time.time()
    key = resolve_key(key)
    net = model.net
    keyed_arch = net.keyed
    channels = model.channels
    rows: list[dict[str, float]] = []
    pictures: list[dict[str, torch.Tensor]] = []
    attack_psnr: dict[str, list[float]] = {}
    attack_corr: dict[str, list[float]] = {}
    stegos, covers, secrets = [], [], []
    prior = _mean_colour(channels)
    for name, cover, secret in pairs:
        stego = quantize(model.hide_tensor(cover, secret, key=key))
        revealed = quantize(model.reveal_tensor(stego, key=key))
        no_key = quantize(model.reveal_tensor(stego)) if key is not None else revealed
        wrong = quantize(model.reveal_tensor(stego, key=random_key())) if keyed_arch else None
        grey = torch.full_like(secret, 0.5)
        row = {
            "psnr_stego": psnr(stego, cover), "ssim_stego": _ssim(stego, cover),
            "psnr_secret": psnr(revealed, secret), "ssim_secret": _ssim(revealed, secret),
            "no_key_psnr": psnr(no_key, secret), "no_key_ssim": _ssim(no_key, secret),
            "unrelated_psnr": psnr(cover, secret), "unrelated_ssim": _ssim(cover, secret),
            "unrelated_corr": _corr(cover, secret),
            "grey_psnr": psnr(grey, secret), "grey_ssim": _ssim(grey, secret),
            "mean_colour_psnr": psnr(prior.expand_as(secret), secret),
        }
        if wrong is not None:
            row.update(wrong_key_psnr=psnr(wrong, secret), wrong_key_ssim=_ssim(wrong, secret))
        attacks = keyless_attacks(stego, cover)
        for attack, image in attacks.items():
            attack_psnr.setdefault(attack, []).append(psnr(image, secret))
            attack_corr.setdefault(attack, []).append(_corr(image, secret))
        rows.append(row)
        stegos.append(stego), covers.append(cover), secrets.append(secret)
        if len(pictures) < PICTURE_ROWS:
            pics = {"cover": cover, "secret": secret, "stego": stego, "revealed (key)": revealed}
            if key is not None:
                pics["revealed, no key"] = no_key
            if wrong is not None:
                pics["revealed, wrong key"] = wrong
            pics["residual x20"] = attacks["residual/x20"]
            pictures.append({k: v[0] for k, v in pics.items()})
    log(f"hid and revealed {len(rows)} pairs")

    figures = {k: _mean([r[k] for r in rows]) for k in rows[0]}
    attack_means = {k: _mean(v) for k, v in attack_psnr.items()}
    best = max(attack_means, key=attack_means.get)
    best_of = lambda prefix: max((k for k in attack_means if k.startswith(prefix)), key=attack_means.get)  # noqa: E731
    keyless = {
        "best": best, "best_psnr": attack_means[best],
        "best_residue": best_of("residue/"), "best_residue_psnr": attack_means[best_of("residue/")],
        "best_bitplane": best_of("bitplane/"), "best_bitplane_psnr": attack_means[best_of("bitplane/")],
        **{f"residual_x{g}_psnr": attack_means[f"residual/x{g}"] for g in (10, 20)},
        "all": attack_means,
    }
    corr_means = {k: _mean(v) for k, v in attack_corr.items()}
    keyless["most_correlated"] = max(corr_means, key=corr_means.get)
    keyless["most_correlated_corr"] = corr_means[keyless["most_correlated"]]
    for i, pics in enumerate(pictures):
        pics[f"best keyless: {best}"] = keyless_attacks(stegos[i], covers[i])[best][0]

    key_reuse = None
    attack = net.known_secret_attack(stegos[0], secrets[0]) if key is not None and len(pairs) > 1 else None
    if attack is not None:
        device, dtype = placement(net)
        with torch.inference_mode():
            reads = [quantize(attack(s.to(device, dtype))).cpu() for s in stegos[1:]]
        key_reuse = _mean([psnr(r, s) for r, s in zip(reads, secrets[1:])])
        for i, pics in enumerate(pictures[1:], start=1):
            pics["key reuse (1 known secret)"] = reads[i - 1][0]

    thief = _run_thief(model, key, covers, stegos, secrets, pictures, thief_steps, batch, crop, seed, log)
    detect = _run_detect(model, key, stegos, covers, detector_steps, batch, crop, seed, log)

    report: dict[str, Any] = {
        "model": model.describe(), "arch_config": net.arch_config, "keyed": key is not None,
        "pairs": [p[0] for p in pairs], "n": len(rows), "size": list(pairs[0][1].shape[-2:]),
        "quantized": True, "psnr_average": PSNR_AVERAGE,
        "quality": {k: figures[k] for k in ("psnr_stego", "ssim_stego", "psnr_secret", "ssim_secret")},
        "wrong_key": {k: v for k, v in figures.items() if not k.startswith(("psnr_", "ssim_"))},
        "keyless": keyless, "key_reuse_psnr": key_reuse, "thief": thief, "detect": detect,
    }
    flat = {
        "wrong_key_psnr": figures.get("wrong_key_psnr"), "no_key_psnr": figures["no_key_psnr"] if key else None,
        "best_keyless_psnr": keyless["best_psnr"], "thief_psnr": thief.get("psnr"),
        "steganalyser_accuracy": detect.get("steganalyser", {}).get("best_accuracy"),
    }
    report["targets"] = {
        name: {"value": flat[name], "bound": bound, "kind": kind,
               "met": None if flat[name] is None else bool(flat[name] <= bound)}
        for name, (bound, kind) in TARGETS.items()
    }
    # An image that knows nothing of the secret already scores the best trivial baseline (a constant:
    # mid-grey, about 11 dB on photos, or the training photos' mean colour, about 13 dB): an attack is
    # only a leak if it beats the better of them; say so beside the fixed bounds.
    trivial = max(("mid-grey", figures["grey_psnr"]), ("mean colour", figures["mean_colour_psnr"]),
                  key=lambda item: item[1])
    report["trivial_baseline"] = {"name": trivial[0], "psnr": trivial[1]}
    for name in ("wrong_key_psnr", "no_key_psnr", "best_keyless_psnr", "thief_psnr"):
        value = flat[name]
        report["targets"][name]["no_better_than_trivial"] = None if value is None else bool(value <= trivial[1])
    report["seconds"] = round(time.time() - start, 1)
    return Analysis(report=report, pictures=pictures)


def _make_stego(net, cover: torch.Tensor, secret: torch.Tensor, keyed: bool) -> torch.Tensor:
    """Stego images the attacker makes with the public net and a random key of their own per image (or none).

    (B, C, h, w) x2 (any device) -> (B, C, h, w) float32, 8-bit, on the net's device.
    """
    device, dtype = placement(net)
    keys = [random_key() for _ in range(len(cover))] if keyed else None
    with torch.no_grad():
        return quantize(net.hide_with_key(cover.to(device, dtype), secret.to(device, dtype), keys))  # keys fresh per image: no nonce


def _run_thief(model, key, covers, stegos, secrets, pictures, steps, batch, crop, seed, log) -> dict:
    if steps <= 0:
        return {"steps": 0}
    net = model.net
    crops = _Crops(model.channels, crop, seed, placement(net)[0])

    def thief_for(keyed: bool):
        def make_batch():
            cover, secret = crops(batch), crops(batch)
            return _make_stego(net, cover, secret, keyed), secret

        torch.manual_seed(seed)
        return train_thief(make_batch, model.channels, net.attacker_view, steps)

    def score(thief, stego_list):
        device, dtype = placement(thief)
        with torch.no_grad():  # the held-out images are on the CPU; the thief may not be
            guesses = [quantize(thief(s.to(device, dtype))).cpu() for s in stego_list]
        return guesses, _mean([psnr(g, s) for g, s in zip(guesses, secrets)])

    out: dict[str, Any] = {"steps": steps, "batch": batch, "crop": crop}
    guesses, out["psnr"] = score(thief_for(key is not None), stegos)
    out["ssim"] = _mean([_ssim(g, s) for g, s in zip(guesses, secrets)])
    out["corr"] = _mean([_corr(g, s) for g, s in zip(guesses, secrets)])
    for pics, g in zip(pictures, guesses):
        pics["thief"] = g[0]
    log(f"thief: {out['psnr']:.2f} dB after {steps} steps")
    if key is not None:  # control: the same thief where nothing is hidden from it (no keys anywhere)
        plain = [quantize(model.hide_tensor(c, s)) for c, s in zip(covers, secrets)]
        out["control_psnr"] = score(thief_for(False), plain)[1]
        log(f"control thief (no keys): {out['control_psnr']:.2f} dB")
    return out


def _run_detect(model, key, stegos, covers, steps, batch, crop, seed, log) -> dict[str, Any]:
    """Steganalyser (trained on training-photo crops) and PoV chi-square on held-out crop pairs."""
    test_covers = torch.cat([_tiles(c, crop) for c in covers])
    test_stegos = torch.cat([_tiles(s, crop) for s in stegos])
    labels = torch.cat([torch.zeros(len(test_covers)), torch.ones(len(test_stegos))]).long()
    test = torch.cat([test_covers, test_stegos])
    out: dict[str, Any] = {"test_crops": int(len(test)), "crop": crop}

    def scores(values: torch.Tensor, threshold: float) -> dict[str, float]:
        # best_accuracy = 1 - P_E: the accuracy at the best threshold (as the steganalysis
        # literature reports it), so an uncalibrated detector is not mistaken for a blind one.
        fpr, tpr, _ = binary_roc(values, labels)
        # An AUROC far under 0.5 is an informative detector with its sign flipped, not a blind one:
        # detectability is max(AUROC, 1 - AUROC), and "inverted" flags the flip.
        auroc = float(binary_auroc(values, labels))
        return {"accuracy": float(binary_accuracy(values, labels, threshold=threshold)),
                "best_accuracy": float(((tpr + 1 - fpr) / 2).max()),
                "auroc": auroc, "detectability": max(auroc, 1.0 - auroc), "inverted": auroc < 0.5}

    out["pov_chi_square"] = scores(pov_chi_square(test), 0.5)
    if steps > 0:
        crops = _Crops(model.channels, crop, seed + 1, placement(model.net)[0])

        def make_batch():
            cover = quantize(crops(batch))
            return cover, _make_stego(model.net, cover, crops(batch), key is not None)

        torch.manual_seed(seed)
        detector = train_steganalyser(make_batch, model.channels, steps)
        out["steganalyser"] = {"steps": steps, "batch": batch, **scores(detection_scores(detector, test), 0.5)}
        log(f"steganalyser: accuracy {out['steganalyser']['accuracy']:.3f}, "
            f"AUROC {out['steganalyser']['auroc']:.3f} after {steps} steps")
    return out


def _fmt(value: Any, unit: str = " dB", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{unit}"


def report_table(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows of the security table."""
    q, w, k, t, d = (report[x] for x in ("quality", "wrong_key", "keyless", "thief", "detect"))
    def target(v: dict[str, Any]) -> str:
        text = f"<= {v['bound']:g}" + (" (met)" if v["met"] else " (missed)" if v["met"] is False else "")
        if v.get("no_better_than_trivial") is not None:
            base = report["trivial_baseline"]
            text += f"; {'no better' if v['no_better_than_trivial'] else 'BETTER'} than {base['name']} " \
                    f"({_fmt(base['psnr'])}, the best trivial baseline)"
        return text

    def auroc(x: dict[str, Any]) -> str:
        text = _fmt(x["auroc"], "", 3)
        if "detectability" in x:
            text += f" (detectability {_fmt(x['detectability'], '', 3)}" + (", INVERTED)" if x["inverted"] else ")")
        return text

    targets = {name: target(v) for name, v in report["targets"].items()}
    rows = [
        ("stego vs cover, PSNR / SSIM", f"{_fmt(q['psnr_stego'])} / {_fmt(q['ssim_stego'], '', 4)}", ""),
        ("revealed vs secret (right key), PSNR / SSIM", f"{_fmt(q['psnr_secret'])} / {_fmt(q['ssim_secret'], '', 4)}", ""),
        ("reveal with no key", f"{_fmt(w['no_key_psnr'])} / {_fmt(w['no_key_ssim'], '', 4)}",
         targets["no_key_psnr"] if report["keyed"] else "(no key used)"),
        ("reveal with a random wrong key", f"{_fmt(w.get('wrong_key_psnr'))} / {_fmt(w.get('wrong_key_ssim'), '', 4)}",
         targets["wrong_key_psnr"]),
        ("baseline: an unrelated photo", f"{_fmt(w['unrelated_psnr'])} / {_fmt(w['unrelated_ssim'], '', 4)}", ""),
        ("baseline: mid-grey", f"{_fmt(w['grey_psnr'])} / {_fmt(w['grey_ssim'], '', 4)}", ""),
        ("baseline: mean colour of the training photos", _fmt(w.get("mean_colour_psnr")), ""),
        (f"best keyless attack ({k['best']})", _fmt(k["best_psnr"]), targets["best_keyless_psnr"]),
        (f"keyless attack most correlated with the secret ({k['most_correlated']}), abs. r",
         _fmt(k["most_correlated_corr"], "", 3), f"unrelated photo: {_fmt(w['unrelated_corr'], '', 3)}"),
        (f"best residue period ({k['best_residue']})", _fmt(k["best_residue_psnr"]), ""),
        (f"best bit plane ({k['best_bitplane']})", _fmt(k["best_bitplane_psnr"]), ""),
        ("stego-cover residual x10 / x20", f"{_fmt(k['residual_x10_psnr'])} / {_fmt(k['residual_x20_psnr'])}", ""),
        ("key reuse: 1 known secret, same key and size", _fmt(report["key_reuse_psnr"]), ""),
        (f"learned thief ({t['steps']} steps), PSNR / abs. r", f"{_fmt(t.get('psnr'))} / {_fmt(t.get('corr'), '', 3)}",
         targets["thief_psnr"]),
        ("  control: same thief, no keys anywhere", _fmt(t.get("control_psnr")), ""),
    ]
    if "steganalyser" in d:
        s = d["steganalyser"]
        rows.append((f"steganalyser ({s['steps']} steps), accuracy / best-threshold accuracy / AUROC",
                     f"{_fmt(s['accuracy'], '', 3)} / {_fmt(s['best_accuracy'], '', 3)} / {auroc(s)}",
                     targets["steganalyser_accuracy"] + " (best-threshold)"))
    p = d["pov_chi_square"]
    rows.append(("pairs-of-values chi-square, accuracy / best-threshold accuracy / AUROC",
                 f"{_fmt(p['accuracy'], '', 3)} / {_fmt(p['best_accuracy'], '', 3)} / {auroc(p)}", ""))
    return rows


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# steg analyze: {report['model']}", ""]
    if report.get("command"):
        lines += [f"Command: `{report['command']}`", ""]
    lines += [f"{report['n']} held-out pairs at {report['size'][0]}x{report['size'][1]}, stego quantized to 8 bits; "
              f"{'keyed' if report['keyed'] else 'no key'}; PSNR against the secret unless said otherwise, "
              f"{report.get('psnr_average', PSNR_AVERAGE)}.", "",
              "| figure | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in report_table(report)]
    return "\n".join(lines) + "\n"


def _data_uri(img: torch.Tensor) -> str:
    from steg.io import to_pil

    buf = io.BytesIO()
    to_pil(img.clamp(0, 1)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _html(analysis: Analysis) -> str:
    report = analysis.report
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in report_table(report))
    pics = []
    for name, images in zip(report["pairs"], analysis.pictures):
        cells = "".join(f'<figure><img src="{_data_uri(v)}" alt="{esc(k)}"><figcaption>{esc(k)}</figcaption></figure>'
                        for k, v in images.items())
        pics.append(f"<h3>{esc(name)}</h3><div class=row>{cells}</div>")
    command = f"<p>Command: <code>{esc(report['command'])}</code></p>" if report.get("command") else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>steg analyze</title><style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
.row{{display:flex;flex-wrap:wrap;gap:8px}} figure{{margin:0}} img{{width:160px;image-rendering:pixelated}}
figcaption{{font-size:12px;max-width:160px}}</style></head><body>
<h1>steg analyze</h1><p>{esc(report['model'])}</p>{command}
<p>{report['n']} held-out pairs, stego quantized to 8 bits, {'keyed' if report['keyed'] else 'no key'}.</p>
<table><tr><th>figure</th><th>value</th><th>target</th></tr>{rows}</table>
<h2>Pictures</h2>{''.join(pics)}</body></html>
"""


def write_report(analysis: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Write :data:`REPORT_FILES` into ``out_dir`` (each atomically); returns name -> path."""
    from steg.io import json_safe, write_text

    out_dir = Path(out_dir)
    texts = {
        "analyze.json": json.dumps(json_safe(analysis.report), indent=2, allow_nan=False) + "\n",
        "analyze.md": _markdown(analysis.report),
        "analyze.html": _html(analysis),
    }
    return {name: write_text(out_dir / name, text) for name, text in texts.items()}


