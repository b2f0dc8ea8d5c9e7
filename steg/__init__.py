"""steg: deep-learning image steganography (hide a secret image in a cover image, reveal it back).

Inference API (imported lazily, so ``import steg`` stays light)::

    from steg import load_model
    model = load_model()                  # shipped model "default", or a .ckpt / .safetensors path
    stego = model.hide(cover, secret)     # PIL images or tensors in [0, 1]
    revealed = model.reveal(stego)

Training lives in :mod:`steg.training.loop` (``python train.py``); the command line in
:mod:`steg.cli` (``steg hide|reveal|eval|export|samples|compare``); model files in
:mod:`steg.inference.files`; architectures in :mod:`steg.nets`; evaluation in :mod:`steg.inference.evaluation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["load_model", "export_checkpoint", "StegModel", "ModelError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from steg.inference.model import StegModel
    from steg.inference.files import ModelError, export_checkpoint


def load_model(model=None, device="cpu", tile: int | str | None = "auto", margin: int | None = None, **options):
    """Load a model for inference; see :func:`steg.inference.model.load_model`.

    ``model``: a training checkpoint (.ckpt), an exported model (.safetensors)
    or the name of a shipped model (``steg/pretrained/NAME.safetensors``);
    None means the shipped model ``"default"``. ``tile``: core tile side for large
    images ("auto": sized to bound memory; None: never tile). Returns a :class:`steg.inference.model.StegModel`;
    ``"digital"`` returns the digital method (:class:`steg.digital.DigitalMethod`, same API; ``options``:
    ``profile``, ``codec``, ``quality``).
    """
    from steg.inference import model as inference

    return inference.load_model(model, device=device, tile=tile, margin=margin, **options)


def __getattr__(name: str):
    if name == "StegModel":
        from steg.inference import model as inference

        return inference.StegModel
    if name in ("export_checkpoint", "ModelError"):
        from steg.inference import files as models

        return getattr(models, name)
    raise AttributeError(f"module 'steg' has no attribute {name!r}")
