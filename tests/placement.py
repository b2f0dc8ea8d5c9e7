"""A second device on a CPU-only machine, for tests of device-agnostic code.

Two stand-ins, each catching the bug "a tensor or module made without the device
of its inputs" (what crashed ``python -m steg.bench --parts speed --device cuda``
and ``steg analyze --device cuda``):

- :class:`StrictPlacement` with a float64 model: the model's parameters are
  float64, every tensor made without ``device=``/``dtype=`` of its inputs is
  float32 (torch's default), and the mode turns any op that mixes a float32 and
  a float64 tensor (beyond 0-dim scalars, which CUDA also lets mix with CPU
  tensors) into an error, as a CPU tensor meeting a CUDA one is. Works for code
  that reads values (analysis, benchmarks).
- the ``meta`` device (used directly by the tests): a real non-CPU device whose
  tensors have no values, so a meta tensor meeting a CPU tensor fails, and so
  does any read of a device value on the host (``bool()``, ``float()``,
  ``.item()``, ``.tolist()``): the per-step host round trips of the training path.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

SIMULATED = torch.float64  # the "device" a model is moved to
HOST = torch.float32       # what a tensor made on the default device gets

# Conversions and copies meet two dtypes on purpose (x.to(...), y.copy_(x), x[i] = y).
_ALLOWED = {"to", "type", "copy_", "__setitem__", "type_as", "__get__", "new_tensor", "double", "float"}


class PlacementError(AssertionError):
    """An op met a tensor of the simulated device and one of the host."""


class StrictPlacement(TorchFunctionMode):
    """Fail on any torch op that mixes :data:`SIMULATED` and :data:`HOST` tensors of one or more dimensions.

    ``ops`` records (name, dtypes) of every op that mixed, for the error message.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name not in _ALLOWED:
            leaves, _ = tree_flatten((args, kwargs))
            dtypes = {t.dtype for t in leaves if isinstance(t, torch.Tensor) and t.dim() > 0 and t.is_floating_point()}
            if {SIMULATED, HOST} <= dtypes:
                raise PlacementError(f"{name} mixes a tensor of the model's device ({SIMULATED}) with one made "
                                     f"on the host ({HOST}): a tensor was made without the device of its inputs")
        return func(*args, **kwargs)
