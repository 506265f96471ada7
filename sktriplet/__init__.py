"""sktriplet: scikit-learn-compatible embedding learning with the triplet loss.

``import sktriplet`` loads nothing heavy: :class:`TripletEmbedder` and the other
public names load scikit-learn on first use, and Keras with its backend loads
only when a model is first built or used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["TripletEmbedder", "load", "metrics", "save", "__version__"]
__version__ = "0.1.0"

# Each public name and the module that defines it, imported on first access
# (PEP 562), so that importing the package stays fast.
_LAZY = {
    "TripletEmbedder": ".estimator",
    "load": ".persistence",
    "save": ".persistence",
    "metrics": None,  # the submodule itself
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import metrics
    from .estimator import TripletEmbedder
    from .persistence import load, save


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'sktriplet' has no attribute {name!r}")
    module = _LAZY[name]
    value = (
        importlib.import_module(f".{name}", __name__)
        if module is None
        else getattr(importlib.import_module(module, __name__), name)
    )
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return list(__all__)
