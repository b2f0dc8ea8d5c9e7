"""model=learned (steg.nets.learned.LatticeCode): a learned code written by qim's lattice writer.

What is checked: the writer's bounds hold for a learned code; the uncoded start is exactly qim's
fixed code; from random weights the code is learned (not a fixed map) and training through the
8-bit channel improves it; keys; the known-pair attack works on the learned code; and the shipped
model file meets the issue's aim on the held-out photos.
"""

from __future__ import annotations

import pytest
import torch

from steg.data import sample_photo_paths
from steg.inference.model import load_model
from steg.distortions.attacks import apply_attack
from steg.io import load_image, square_image, to_pil, to_tensor
from steg.metrics import psnr
from steg.nets import LatticeCode, QIMNet, RobustLatticeCode
from steg.quantize import quantize


def photos(size: int, split: str = "val") -> list[torch.Tensor]:
    return [to_tensor(square_image(load_image(p, 3), size)).unsqueeze(0) for p in sample_photo_paths(split)]


def pairs(size: int, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
    """Covers and secrets of the split's photos at ``size``: image i hides image i + 1. (N, 3, size, size) each."""
    images = photos(size, split)
    return torch.cat(images), torch.cat(images[1:] + images[:1])


@pytest.mark.parametrize("period", [5, 13, 16])
@pytest.mark.parametrize("start", ["random", "uncoded"])
def test_stego_is_8_bit_and_within_half_a_period_of_the_cover(period, start):
    torch.manual_seed(0)
    net = LatticeCode(period=period, width=8, depth=1, start=start).eval()
    cover, secret = pairs(32)
    with torch.no_grad():
        stego = net.hide(cover, secret)
    levels = stego * 255
    assert torch.equal(levels, torch.round(levels)), "stego must already lie on the 8-bit grid"
    change = (levels - torch.round(cover * 255)).abs()
    inner = (cover * 255 >= period // 2) & (cover * 255 <= 255 - period // 2)
    assert change[inner].max() <= period // 2 and change.max() <= period - 1


def test_uncoded_start_is_qims_fixed_code_and_reveal():
    """start=uncoded begins exactly where qim (encoder off, fresh decoder) is: same stego, same reveal."""
    torch.manual_seed(0)
    learned = LatticeCode(period=13, width=8, depth=1, start="uncoded").eval()
    fixed = QIMNet(period=13, width=8, depth=1, encoder=False).eval()
    cover, secret = pairs(64)
    stego = learned.hide(cover, secret)
    assert torch.equal(stego, fixed.hide(cover, secret))
    torch.testing.assert_close(learned.reveal(stego), fixed.reveal(stego), atol=2e-6, rtol=0)
    assert psnr(quantize(learned.reveal(stego)), secret) > 30.0


def test_random_start_code_is_learned_not_fixed():
    """From random weights the code is whatever the encoder computes: two seeds, two codes, neither qim's."""
    cover, secret = pairs(32)
    codes = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        codes.append(LatticeCode(width=8, depth=1).eval().code(cover, secret))
    uncoded = QIMNet(width=8, depth=1, encoder=False).eval().code(cover, secret)
    residue = lambda c: torch.remainder(torch.round(c), 13)  # noqa: E731
    assert (residue(codes[0]) != residue(codes[1])).float().mean() > 0.5
    assert (residue(codes[0]) != residue(uncoded)).float().mean() > 0.5


@pytest.mark.parametrize("start", ["random", "uncoded"])
def test_the_secret_loss_reaches_the_encoder_through_the_8_bit_residues(start):
    """The reveal reads the rounded stego's residues, yet the secret's loss alone trains the encoder
    (an earlier version rounded again inside the reveal: the encoder then learned nothing from it)."""
    torch.manual_seed(0)
    net = LatticeCode(width=8, depth=1, start=start)
    cover, secret = pairs(32)
    for _ in range(2):  # zero-initialised layers pass a gradient from the second step (start=uncoded)
        net.zero_grad()
        out = net(cover, secret, quantize=True)
        torch.nn.functional.mse_loss(out["revealed"], secret).backward()
        torch.optim.SGD(net.parameters(), lr=1e-2).step()
    reached = [n for n, p in net.named_parameters() if n.startswith(("hide_net", "linear", "spread"))
               and p.grad is not None and p.grad.abs().sum() > 0]
    assert len(reached) == sum(1 for n, _ in net.named_parameters() if n.startswith(("hide_net", "linear", "spread")))


def test_random_start_learns_through_the_8_bit_channel():
    """A few dozen Adam steps on training photos raise the held-out revealed PSNR well above the start.

    The reveal sees the 8-bit stego's residues with the gradient reaching the encoder (an earlier version
    rounded inside the reveal and the encoder never learned: it stayed at about 13 dB).
    """
    torch.manual_seed(0)
    net = LatticeCode(width=16, depth=1)
    train_cover, train_secret = pairs(64, "train")
    test_cover, test_secret = pairs(64)

    def revealed_psnr() -> float:
        net.eval()
        with torch.no_grad():
            stego = quantize(net.hide(test_cover, test_secret))
            out = psnr(quantize(net.reveal(stego)), test_secret)
        net.train()
        return out

    before = revealed_psnr()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(60):
        optimizer.zero_grad()
        out = net(train_cover, train_secret, quantize=True)
        torch.nn.functional.mse_loss(out["revealed"], train_secret).backward()
        optimizer.step()
    after = revealed_psnr()
    assert after > before + 4.0 and after > 17.0, (before, after)


def test_keys_right_key_reveals_wrong_key_gives_noise():
    net = LatticeCode(width=8, depth=1, start="uncoded").eval()
    cover, secret = pairs(64)
    stego = quantize(net.hide_with_key(cover, secret, [b"k" * 32] * len(cover)))
    right = psnr(quantize(net.reveal_with_key(stego, [b"k" * 32] * len(cover))), secret)
    wrong = psnr(quantize(net.reveal_with_key(stego, [b"w" * 32] * len(cover))), secret)
    assert right > 30.0 and wrong < 13.0, (right, wrong)


def test_known_pair_attack_recovers_the_keyed_dither_of_a_learned_code():
    """The attack hook subtracts the *learned* code of the known secret (qim's fixed map would not do)."""
    torch.manual_seed(0)
    net = LatticeCode(width=8, depth=1).eval()
    cover, secret = pairs(32)
    key = b"s" * 32
    stego = quantize(net.hide(cover[:1], secret[:1], key=key))
    true_dither = net._dither_like(cover[:1], key)
    dither = net.known_secret_dither(stego, secret[:1])
    gap = torch.remainder(dither - true_dither + 6.5, 13) - 6.5  # circular difference, levels
    # round(code + d) - round(code) is d to within one level (two roundings)
    assert gap.abs().max() <= 1.0 + 1e-4 and gap.abs().mean() < 0.5, (gap.abs().max(), gap.abs().mean())


def test_shipped_learned_model_meets_the_aim_on_the_held_out_photos():
    """steg/pretrained/learned.safetensors (experiments/learned): >= 34 dB stego, >= 30 dB revealed, 8-bit."""
    model = load_model("learned", tile=None)
    assert model.net.arch_config["name"] == "learned"
    cover, secret = pairs(256)
    stego = quantize(model.hide_tensor(cover, secret))
    revealed = quantize(model.reveal_tensor(stego))
    assert psnr(stego, cover) >= 34.0 and psnr(revealed, secret) >= 30.0, (psnr(stego, cover), psnr(revealed, secret))


# -- model=learned_robust: the lattice on luma DCT coefficients ------------------------------------

def code_error_after(net: RobustLatticeCode, stego: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
    """Circular distance (periods) between the code the encoder wrote and what the stego's coefficients hold."""
    with torch.no_grad():
        code = net.encode(net.hide_net(secret))
        read = net._coefficients(stego) / net.step - net.dither
    return torch.remainder(read - code + 0.5, 1.0) - 0.5


def test_robust_lattice_writes_its_code_with_the_stated_stego_error():
    torch.manual_seed(0)
    net = RobustLatticeCode(width=4, depth=1).eval()
    cover, secret = pairs(64)
    stego = net.hide(cover, secret)
    assert code_error_after(net, stego, secret).abs().max() < 1e-4  # float stego: the code exactly
    expected = 10 * torch.log10(torch.tensor(255.0 ** 2 / (net.slots / 64 * net.step ** 2 / 12)))
    measured = psnr(quantize(stego), cover)
    assert abs(measured - float(expected)) < 0.6, (measured, float(expected))


def test_robust_lattice_code_survives_real_jpeg_90_and_qims_does_not():
    """The channel itself, untrained: after a real JPEG 90 (PIL) the written code moves by a small fraction
    of the period; the pixel lattice of model=learned is scrambled by the same codec."""
    torch.manual_seed(0)
    net = RobustLatticeCode(width=4, depth=1).eval()
    cover, secret = pairs(128)
    stego = quantize(net.hide(cover, secret))
    jpeg = torch.cat([to_tensor(apply_attack(to_pil(s), "jpeg:90").image).unsqueeze(0) for s in stego])
    assert code_error_after(net, stego, secret).abs().mean() < 0.02  # 8-bit rounding alone
    assert code_error_after(net, jpeg, secret).abs().mean() < 0.06
    pixel = LatticeCode(width=8, depth=1, start="uncoded").eval()
    stego = quantize(pixel.hide(cover, secret))
    jpeg = torch.cat([to_tensor(apply_attack(to_pil(s), "jpeg:90").image).unsqueeze(0) for s in stego])
    moved = torch.remainder(pixel.residues(jpeg) - pixel.residues(stego) + 0.5, 1.0) - 0.5
    assert moved.abs().mean() > 0.15  # near uniform (0.25): the pixel code does not survive


def test_thirty_minute_plot_script_draws_a_run_and_refuses_one_without_validation(tmp_path):
    """experiments/learned/plot_thirty.py, as its README runs it."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "learned" / "plot_thirty.py"
    run = tmp_path / "run"
    (run / "csv").mkdir(parents=True)
    lines = ["epoch,step,train/loss,val/psnr_stego,val/psnr_secret"]
    lines += [f"{e},{24 * (e + 1)},0.1,," for e in range(3)] + [f"{e},{24 * (e + 1)},,36.5,{20 + e}" for e in range(3)]
    (run / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "curve.png"
    done = subprocess.run([sys.executable, str(script), str(run), str(out), "--minutes", "3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (run / "csv" / "metrics.csv").write_text("\n".join(lines[:4]) + "\n")
    done = subprocess.run([sys.executable, str(script), str(run), str(out)], capture_output=True, text=True)
    assert done.returncode != 0 and "no validation rows" in done.stderr
