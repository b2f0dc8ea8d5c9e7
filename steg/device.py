"""Where tensors live: the device and dtype of a module, and host-to-device copies that do not stall.

The rule everywhere in steg: a tensor is made on the device (and in the dtype)
of the tensors or the module it meets, never on torch's default device. Two
helpers carry it:

- :func:`placement`: the (device, dtype) of a module's first parameter (or
  buffer), what its inputs must be moved to;
- :func:`to_device`: a CPU tensor (key tables, index lists made with numpy)
  copied to another device without a host round trip: through pinned memory
  and ``non_blocking=True`` on CUDA, so the host does not wait for the GPU's
  queue as a plain ``.to("cuda")`` of pageable memory does.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["placement", "to_device"]


def placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of ``module``'s first floating-point parameter or buffer; (cpu, float32) if it has none."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``; a CPU tensor goes to a CUDA device through pinned memory, without a sync.

    Shape and dtype are kept. A tensor already on ``device`` is returned as is.
    """
    device = torch.device(device)
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
