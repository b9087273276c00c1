"""The version of lamae, a leaf every module may import (``lamae.__version__`` reads it)."""

__version__ = "0.1.0"
