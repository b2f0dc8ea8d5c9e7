"""The open architecture registry: built-in names, and any :class:`StegNet` subclass by import path.

Trust model: a config the user writes (a Hydra ``_target_``, ``build_net`` from
Python) may name any importable class, as Hydra allows. A model file is data:
while one is read (:func:`model_file_targets`), its ``arch_config`` may name the
built-ins (by name) and only the classes the user names: ``--allow-arch TARGET``
on the command line, :func:`allow_target` from Python, or the environment
variable ``STEG_ALLOW_ARCH`` (comma-separated). Any other target is refused
before its module is imported, so a crafted file cannot run an installed
module's import-time code. Only a dotted module path is accepted (no file
paths, no code), and only a subclass of :class:`~steg.nets.base.StegNet` is
ever instantiated.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from steg.nets.base import StegNet

__all__ = ["ARCHITECTURES", "ALLOW_ENV", "register", "net_class", "build_net", "allow_target", "model_file_targets"]

#: Registered architectures by name (the built-ins register on import of :mod:`steg.nets`).
ARCHITECTURES: dict[str, type[StegNet]] = {}

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
# Hydra targets of the built-ins name their re-export in steg.nets (steg.nets.QIMNet).
_PACKAGE = "steg.nets"

N = TypeVar("N", bound=type)

#: Environment variable: comma-separated import paths a model file may name (see :func:`allow_target`).
ALLOW_ENV = "STEG_ALLOW_ARCH"
# Targets the user allowed in this process (allow_target / --allow-arch).
_ALLOWED: set[str] = set()
# True while a model file's arch_config is rebuilt: only built-ins and allowed targets.
_FROM_FILE: contextvars.ContextVar[bool] = contextvars.ContextVar("steg_arch_from_file", default=False)


def allow_target(*targets: str) -> None:
    """Let model files name these architectures (``'mypkg.mynet.MyNet'``): the user's own classes."""
    _ALLOWED.update(t.strip() for t in targets if t and t.strip())


def _allowed() -> set[str]:
    return _ALLOWED | {t.strip() for t in os.environ.get(ALLOW_ENV, "").split(",") if t.strip()}


@contextlib.contextmanager
def model_file_targets() -> Iterator[None]:
    """Within: a ``target`` that is neither built-in nor allowed is refused before any import."""
    token = _FROM_FILE.set(True)
    try:
        yield
    finally:
        _FROM_FILE.reset(token)


def register(cls: N) -> N:
    """Class decorator: make ``cls`` known by ``cls.name`` (``@register class MyNet(StegNet): name = "mynet"``)."""
    if not (isinstance(cls, type) and issubclass(cls, StegNet)):
        raise TypeError(f"register: {cls!r} is not a StegNet subclass")
    other = ARCHITECTURES.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"architecture name {cls.name!r} is taken by {other.__module__}.{other.__qualname__}")
    ARCHITECTURES[cls.name] = cls
    return cls


def _import_class(target: str) -> type[StegNet]:
    if not isinstance(target, str) or not _DOTTED.match(target):
        raise ValueError(f"architecture target {target!r} is not a dotted import path like 'mypkg.mynet.MyNet'")
    module_name, _, attr = target.rpartition(".")
    for cls in ARCHITECTURES.values():  # a built-in, by its re-export or its own module
        if target in (f"{_PACKAGE}.{cls.__name__}", f"{cls.__module__}.{cls.__qualname__}"):
            return cls
    if _FROM_FILE.get() and target not in _allowed():
        raise ValueError(
            f"architecture target {target!r} is not built in; a model file's own architecture is imported only "
            f"when you name it: --allow-arch {target} (or {ALLOW_ENV}={target}, or "
            f"steg.nets.allow_target({target!r}) in Python)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"architecture {target!r}: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, StegNet)):
        raise ValueError(f"architecture {target!r} is not a steg.nets.StegNet subclass")
    return cls


def net_class(config: Mapping[str, Any] | str) -> type[StegNet]:
    """The class a config names: ``target`` (an arch_config), ``_target_`` (a Hydra config) or ``name``.

    Raises:
        ValueError: one line, for an unknown name or a target that is not an
            importable StegNet subclass.
    """
    if isinstance(config, str):
        config = {"name": config}
    target = config.get("target") or config.get("_target_")
    if target:
        return _import_class(target)
    name = config.get("name")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; expected one of {', '.join(sorted(ARCHITECTURES))} "
                         "or a 'target' import path")
    return ARCHITECTURES[name]


def build_net(name: str | None = None, target: str | None = None, **kwargs: Any) -> StegNet:
    """Rebuild a net from its ``arch_config`` (``build_net(**net.arch_config)``; no Hydra needed)."""
    return net_class({"name": name, "target": target})(**kwargs)
