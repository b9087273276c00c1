"""Optional dependencies: one message for "this needs an extra that is not installed"."""

from __future__ import annotations

import importlib

from .errors import LamaeError


def require(module: str, extra: str | None, purpose: str, package: str | None = None):
    """Import ``module`` for ``purpose``, or raise a LamaeError naming the extra to install.

    ``package``: the pip name where it differs from the module's (``torch.utils.tensorboard``
    needs ``tensorboard``)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module.split(".")[0]
        how = f"pip install 'lamae[{extra}]' (or pip install {package})" if extra else f"pip install {package}"
        raise LamaeError(f"{purpose} needs {package}: {how}") from None
