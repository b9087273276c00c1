"""lamae: ECG foundation models built around LAMAE, the latent attention masked autoencoder."""

__version__ = "0.1.0"
