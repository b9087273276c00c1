"""lamae: ECG foundation models built around LAMAE, the latent attention masked autoencoder.

    import lamae
    model = lamae.load("runs/pretrain")
    z = model.embed(signal, fs=500, leads=["I", "II", "V1"])
    z = model.embed("exports/ecg_0001.xml")          # any file lamae reads: its leads and rate
    rec = lamae.read("exports/ecg_0001.xml")         # the file as an EcgRecord (signal in mV, leads, fs, meta)
"""

from .version import __version__  # noqa: F401


def load(path, device="cpu"):
    """Load a pretrained model with its preprocessing; see :mod:`lamae.api`."""
    from .api import load as _load

    return _load(path, device)


def read(path, *, derive_limb_leads=False):
    """One ECG file of any format lamae reads (WFDB, EDF, DICOM, GE MUSE, Philips, HL7 aECG,
    SCP-ECG, ...), detected by its content; see :mod:`lamae.data.readers`."""
    from .data.readers import read as _read

    return _read(path, derive_limb_leads=derive_limb_leads)
