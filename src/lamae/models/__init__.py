"""Models. ``family.py`` is the registry that names and builds every member; ``lamae.py`` is
LAMAE, ``cpc.py`` the state-space members; ``config.py`` their settings and ``inputs.py`` what
they share about the input, below both; ``layers.py`` holds the standard transformer blocks."""

from .config import SIZES, LamaeConfig
from .family import build_model
from .lamae import Lamae

__all__ = ["Lamae", "LamaeConfig", "SIZES", "build_model"]
