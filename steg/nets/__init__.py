"""Hide and reveal networks: one module per ``conf/model/*.yaml``, and an open registry.

Every architecture is a :class:`StegNet` (``hide``, ``reveal``, a training-only
``noise``, and what tiling and model files need to know: ``size_multiple``,
``receptive_radius()``, ``feature_channels()``, ``arch_config``, ``tiny()``).

========================  =====================================================
``model=``                class
========================  =====================================================
``qim`` (default)         :class:`QIMNet` (:mod:`steg.nets.qim`)
``unet``                  :class:`UnshuffleUNet` (:mod:`steg.nets.unet`)
``subpixel``, ``_full``   :class:`Subpixel` (:mod:`steg.nets.subpixel`)
``cnn``                   :class:`CNN` (:mod:`steg.nets.cnn`)
``baluja``                :class:`Baluja` (:mod:`steg.nets.baluja`)
``hinet``                 :class:`HiNet` (:mod:`steg.nets.hinet`): invertible, HiNet-class
``learned``               :class:`LatticeCode` (:mod:`steg.nets.learned`): a learned code written by qim's lattice
``learned_robust``        :class:`RobustLatticeCode` (:mod:`steg.nets.learned`): the same on luma DCT coefficients, for JPEG
``payload``               :class:`Payload` (:mod:`steg.nets.payload`): any of these, hiding a smaller secret
========================  =====================================================

Your own architecture: subclass :class:`StegNet` in any importable module and
name it in a config's ``_target_``; its import path goes into the model files
(see :mod:`steg.nets.registry` for the trust model and the README's
"Add your own architecture").
"""

from steg.nets.base import PrepHideReveal, StegNet
from steg.nets.layers import Branches, GaussianNoise, SameConv, UnshuffleBody
from steg.nets.registry import ARCHITECTURES, allow_target, build_net, net_class, register

# Built-ins register themselves on import.
from steg.nets.baluja import Baluja  # noqa: E402
from steg.nets.cnn import CNN  # noqa: E402
from steg.nets.subpixel import Subpixel, SubpixelUNet  # noqa: E402
from steg.nets.unet import UnshuffleUNet  # noqa: E402
from steg.nets.qim import QIMNet, wrap_period  # noqa: E402
from steg.nets.hinet import HiNet  # noqa: E402
from steg.nets.learned import LatticeCode, RobustLatticeCode  # noqa: E402
from steg.nets.payload import Payload, reduce_secret  # noqa: E402

__all__ = [
    "ARCHITECTURES", "Baluja", "Branches", "CNN", "GaussianNoise", "HiNet", "LatticeCode", "Payload", "RobustLatticeCode", "PrepHideReveal", "QIMNet", "SameConv",
    "StegNet", "Subpixel", "SubpixelUNet", "UnshuffleBody", "UnshuffleUNet", "allow_target", "build_net", "net_class",
    "reduce_secret", "register", "wrap_period",
]
