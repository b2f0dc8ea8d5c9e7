"""Benchmarks: training throughput, inference time, quality at a time budget, security and robustness.

``make bench`` runs ``python -m steg.bench``; every part writes into ``--out``
(default ``experiments/bench``): ``bench.json`` (all figures, each part with
the command and machine that measured it) and ``bench.md`` (the tables, one
row per model). Parts (``--parts``, in this order):

- ``speed`` (:mod:`steg.bench.speed`): training steps per second of each
  architecture at 64x64, batch 16, on a real Lightning ``Trainer``, fp32 eager
  beside the device's fast path (:func:`fast_path`), with the PSNR after the
  same steps.
- ``inference`` and ``cli`` (:mod:`steg.bench.hide_reveal`): ``steg hide`` +
  ``steg reveal`` of one image of each size through
  :class:`steg.inference.model.StegModel`, and as fresh processes with the shipped model.
- ``quality`` (:mod:`steg.bench.quality`): each architecture trained for the
  same wall-clock budget with ``train.py``, then ``steg eval`` of its best
  checkpoint on held-out photographs.
- ``security`` (:mod:`steg.bench.security`): :func:`steg.security.analysis.analyze`
  (``steg analyze``) of every architecture's quality checkpoint and every
  shipped model: wrong-key and no-key PSNR, the best keyless attack, a learned
  thief, a steganalyser and a classical statistic.
- ``robustness`` (:mod:`steg.bench.robustness`): ``steg eval --attack`` of the
  same models: the revealed secret's PSNR after each real distortion.

The models (:mod:`steg.bench.common`): every registered architecture and every
shipped model, or ``--models``. Security and robustness need no training of
their own: they measure the quality part's checkpoints in ``--runs-dir`` (from
this run or an earlier one) and skip, with one line, an architecture that has
none. Figures are measured, never asserted: no test times anything.
"""

from steg.bench.cli import PARTS, build_parser, main
from steg.bench.common import Target, build_model, compose, models, preset, resolve_targets
from steg.bench.hide_reveal import cli_wall_times
from steg.bench.speed import fast_path
from steg.bench.tables import markdown

__all__ = ["PARTS", "Target", "build_model", "build_parser", "cli_wall_times", "compose", "fast_path", "main",
           "markdown", "models", "preset", "resolve_targets"]
