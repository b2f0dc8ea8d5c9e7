"""The open architecture registry: built-in names, and any :class:`StegNet` subclass by import path.

Trust model: rebuilding a net from a model file may import the Python module
that the file's ``arch_config["target"]`` names, exactly as a Hydra config's
``_target_`` does. Only a dotted module path is accepted (no file paths, no
code), and only a subclass of :class:`~steg.nets.base.StegNet` is ever
instantiated. Load model files from sources you would take a config from.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from steg.nets.base import StegNet

__all__ = ["ARCHITECTURES", "register", "net_class", "build_net"]

#: Registered architectures by name (the built-ins register on import of :mod:`steg.nets`).
ARCHITECTURES: dict[str, type[StegNet]] = {}

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
# Hydra targets of the built-ins name their re-export in steg.nets (steg.nets.QIMNet).
_PACKAGE = "steg.nets"

N = TypeVar("N", bound=type)


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
    if module_name == _PACKAGE and attr in {c.__name__ for c in ARCHITECTURES.values()}:
        return next(c for c in ARCHITECTURES.values() if c.__name__ == attr)
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
