"""lamae: ECG foundation models built around LAMAE, the latent attention masked autoencoder.

    import lamae
    model = lamae.load("runs/pretrain")
    z = model.embed(signal, fs=500, leads=["I", "II", "V1"])
"""

__version__ = "0.1.0"


def load(path, device="cpu"):
    """Load a pretrained model with its preprocessing; see :mod:`lamae.api`."""
    from .api import load as _load

    return _load(path, device)
