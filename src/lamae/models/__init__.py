"""Models. ``lamae.py`` is LAMAE; ``layers.py`` holds the standard transformer blocks."""

from .lamae import SIZES, Lamae, LamaeConfig, build_model

__all__ = ["Lamae", "LamaeConfig", "SIZES", "build_model"]
