"""steg.report.rank: Pareto front, ranking by revealed PSNR above a stego PSNR floor, ranking by a
metric, and the warning when the ranked metric does not compare across the runs."""

from __future__ import annotations

import pytest

from report_fakes import fake_run
from steg.report import comparability_warning, load_run, pareto_front, rank, rank_runs
from steg.report.rank import point_of, rank_by_floor


def test_pareto_front_of_known_points():
    points = [(30.0, 20.0), (35.0, 18.0), (29.0, 19.0), None, (35.0, 18.0), (36.0, 10.0), (30.0, 19.0)]
    # (29, 19) and (30, 19) are dominated by (30, 20); duplicates dominate neither; None is never on it.
    assert pareto_front(points) == [True, True, False, False, True, True, False]
    assert pareto_front([]) == [] and pareto_front([(1.0, 1.0)]) == [True]


def _runs(tmp_path, spec):
    """spec: {name: (stego, revealed, beta)}; one epoch each."""
    return [load_run(fake_run(tmp_path, name, beta=beta, losses=(0.1,), psnr_stego=(s,), psnr_secret=(r,)))
            for name, (s, r, beta) in spec.items()]


def test_floor_ranking(tmp_path):
    runs = _runs(tmp_path, {
        "high_reveal_low_stego": (25.0, 40.0, 0.5),   # best reveal, but visibly altered: below the floor
        "balanced": (33.0, 28.0, 0.5),
        "invisible": (45.0, 20.0, 0.5),
        "same_reveal_more_hidden": (34.0, 28.0, 0.5),  # ties on reveal: higher stego PSNR first
        "below_and_worse": (20.0, 10.0, 0.5),
    })
    ranked, n_above = rank_by_floor(runs, floor=30.0)
    assert [r.path.name for r in ranked] == ["same_reveal_more_hidden", "balanced", "invisible",
                                             "high_reveal_low_stego", "below_and_worse"]
    assert n_above == 3
    ranking = rank(runs, None, floor=30.0)
    assert ranking.winner is ranking.runs[0] and ranking.runs[0].path.name == "same_reveal_more_hidden"
    on_front = {r.path.name for r, on in zip(ranking.runs, ranking.front) if on}
    assert on_front == {"same_reveal_more_hidden", "invisible", "high_reveal_low_stego"}
    # A lower floor lets the best revealer win; a floor above every run leaves no winner.
    assert rank(runs, None, floor=20.0).runs[0].path.name == "high_reveal_low_stego"
    nobody = rank(runs, None, floor=50.0)
    assert nobody.winner is None and nobody.n_above == 0
    assert nobody.runs[0].path.name == "high_reveal_low_stego"  # still ordered by reveal below the floor


def test_ranking_by_a_metric_follows_its_direction(tmp_path):
    runs = [load_run(fake_run(tmp_path, n, losses=l, psnr_secret=t)) for n, l, t in (
        ("a", (0.30, 0.20), (18.0, 21.0)), ("b", (0.10, 0.25), (23.5, 22.0)), ("c", (0.40, 0.15), (17.0, 20.0)))]
    names = lambda ranked: [r.path.name for r in ranked]  # noqa: E731
    assert names(rank_runs(runs, "val/loss", "best")) == ["b", "c", "a"]
    assert names(rank_runs(runs, "val/loss", "final")) == ["c", "a", "b"]
    assert names(rank_runs(runs, "val/psnr_secret", "best")) == ["b", "a", "c"]


def test_warning_for_a_loss_across_different_betas(tmp_path):
    runs = _runs(tmp_path, {"b05": (33.0, 28.0, 0.5), "b075": (34.0, 27.0, 0.75)})
    warning = comparability_warning(runs, "val/loss")
    assert warning is not None and "\n" not in warning
    assert warning.startswith("val/loss is not comparable") and "beta (0.5, 0.75)" in warning
    assert rank(runs, "val/loss/cover_mse").warning is not None  # a loss term too
    # The PSNRs do not depend on beta: no warning for the default ranking or a PSNR metric.
    assert rank(runs, None).warning is None and rank(runs, "val/psnr_secret").warning is None


def test_no_warning_for_same_beta_loss_and_data(tmp_path):
    a = load_run(fake_run(tmp_path, "a", beta=0.5, batch_size=8))
    b = load_run(fake_run(tmp_path, "b", beta=0.5, batch_size=32, model="cnn"))  # batch size: training only
    assert comparability_warning([a, b], "val/loss") is None


@pytest.mark.parametrize("kwargs, expected", [
    ({"loss": {"_target_": "steg.training.losses.ImageLoss", "mse": 0.84, "ssim": 0.1}}, "loss.mse (1.0, 0.84)"),
    ({"image_size": 128}, "data.image_size (64, 128)"),
])
def test_warning_names_a_different_loss_or_image_size(tmp_path, kwargs, expected):
    a = load_run(fake_run(tmp_path, "a"))
    b = load_run(fake_run(tmp_path, "b", **kwargs))
    warning = comparability_warning([a, b], "val/loss")
    assert warning is not None and expected in warning, warning
    figures = comparability_warning([a, b], None)
    if "image_size" in expected:  # PSNRs on other validation data do not compare either
        assert figures is not None and expected in figures and "different validation data" in figures
    else:
        assert figures is None


def test_a_runs_point_is_one_epoch(tmp_path):
    # Not the per-metric maxima: a residual net's stego PSNR peaks at epoch 0, before it hides anything.
    run = load_run(fake_run(tmp_path, "unet", losses=(0.5, 0.1, 0.2), psnr_stego=(50.0, 31.0, 33.0),
                            psnr_secret=(5.0, 20.0, 19.0)))
    assert point_of(run, "best") == (31.0, 20.0)  # the best checkpoint's epoch
    assert point_of(run, "final") == (33.0, 19.0)
    assert rank([run], None, "best", floor=32.0).winner is None
    assert rank([run], None, "final", floor=32.0).winner is run
