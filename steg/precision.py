"""Full precision where it matters: the one helper that takes code out of mixed-precision autocast.

Under ``trainer.precision=bf16-mixed`` (the GPU preset) Lightning runs the whole
step inside ``torch.autocast``: convolutions and matrix products run in bfloat16,
which holds 8 bits of mantissa, i.e. about 2 of the 256 levels of an 8-bit image.
That is fine for a net's features and wrong for what must be exact or measured:

- metrics and losses (an SSIM in bf16 read 0.61 for 0.93);
- the Haar transform, the invertible couplings, the residual added to the cover
  and the subtraction that undoes it (a fresh HiNet, the identity, moved the
  cover by 1.5 levels in bf16).

:func:`fp32` turns autocast off for the device of its inputs and computes in
float32, as a context manager or a decorator (floating tensor arguments are cast
to float32; other arguments are passed on unchanged). Outside autocast it costs
nothing but the casts, so fp32 runs are unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

__all__ = ["fp32", "full"]

F = TypeVar("F", bound=Callable[..., Any])


def full(x: Any) -> Any:
    """``x`` as float32 if it is a floating tensor of lower precision; anything else unchanged (float64 stays).

    >>> full(torch.ones(2, dtype=torch.bfloat16)).dtype, full(torch.ones(2, dtype=torch.float64)).dtype
    (torch.float32, torch.float64)
    """
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
        return x.float()
    return x


@contextlib.contextmanager
def _autocast_off(device_types: set[str]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for device_type in sorted(device_types):
            if torch.amp.is_autocast_available(device_type):
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


class _FP32:
    """See :func:`fp32`."""

    def __init__(self, *tensors: torch.Tensor):
        self.device_types = {t.device.type for t in tensors if isinstance(t, torch.Tensor)} | {"cpu"}
        self._ctx: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> None:
        self._ctx = _autocast_off(self.device_types)
        self._ctx.__enter__()

    def __exit__(self, *exc) -> bool | None:
        assert self._ctx is not None
        return self._ctx.__exit__(*exc)


def fp32(fn_or_tensor: Any = None, *tensors: torch.Tensor) -> Any:
    """Autocast off, computing in float32: a decorator, or a context manager for given tensors' devices.

    As a decorator, ``@fp32`` on a function: autocast is off while it runs, for
    the CPU and the devices of its tensor arguments, and its floating tensor
    arguments of lower precision (bf16, fp16) arrive as float32 (:func:`full`).
    As a context manager, ``with fp32(x, y):`` turns autocast off for the CPU and
    the devices of ``x``, ``y`` (the caller casts with :func:`full` or ``.float()``).
    Shapes: unchanged.

    >>> @fp32
    ... def square(x):
    ...     return x @ x
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     square(torch.eye(2)).dtype
    torch.float32
    """
    if callable(fn_or_tensor) and not isinstance(fn_or_tensor, torch.Tensor):
        fn = fn_or_tensor

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            args = tuple(full(a) for a in args)
            kwargs = {k: full(v) for k, v in kwargs.items()}
            with _FP32(*args, *kwargs.values()):
                return fn(*args, **kwargs)

        return wrapper
    return _FP32(*((fn_or_tensor,) if fn_or_tensor is not None else ()), *tensors)
