"""The pretrained model as a tool on anyone's ECGs.

    import lamae
    model = lamae.load("runs/pretrain")                 # a run folder or a checkpoint folder
    z = model.embed(signal, fs=360, leads=["I", "II", "III", "aVR", "aVL", "aVF"])
    z, w = model.embed(signal, fs=500, leads=twelve, return_weights=True)   # + lead weights
    out = model.reconstruct(signal, fs=500, leads=twelve, hide=["V1"])       # fill in a lead

``signal`` is a NumPy array in millivolts, (leads, samples) for one ECG or (ECGs, leads,
samples) for several of the same shape, at any sampling rate, any length, with any subset
of the twelve standard leads in any order (names as in ``lamae.leads``; common aliases are
accepted). The checkpoint's own preprocessing is applied: resampling to the model's rate,
the band-pass, the window and the normalisation are those it was trained with.

Length: a record shorter than the model's window (but at least half of it) is padded as
in ``prepare``; a longer one is cut into consecutive windows (``windows="tile"``, the
default; a final partial window is used when it covers at least half a window), each is
embedded and the embeddings and lead weights are averaged. ``windows="start"`` and
``"center"`` use one window.

Missing values: gaps of NaN/inf samples up to a second are interpolated; a lead with a longer
gap, a lead that is mostly NaN (more than the preprocessing's ``max_invalid_fraction``), or
one that is flat or saturated is treated as absent, with a warning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .eval.metrics import lead_error
from .files import output_dir
from .embedding import embed_arrays
from .data.preprocess import MAX_INPUT_FS, Preprocessing, lead_problems, preprocess_windows
from .errors import LamaeError, RecordError, ShapeError
from .leads import LEAD_INDEX, STANDARD_LEADS, canonical_leads
from .models.lamae import Lamae

WINDOWS = ("tile", "start", "center")


def as_signal_array(signal, record_id: str = "input") -> np.ndarray:
    """A real-valued float64 array of ``signal``: NumPy arrays and nested lists of integers or
    floats, and torch tensors (detached, moved to the CPU; gradients are not tracked through
    lamae). Complex, boolean, string and object arrays (None, numbers as text) are refused by
    name rather than guessed at."""
    if isinstance(signal, np.ma.MaskedArray):  # masked samples are missing: NaN, never the buffer beneath
        if signal.dtype.kind not in "iuf":
            raise ShapeError(f"{record_id}: signal is a masked array of {signal.dtype}, not real numbers; "
                             "ECG samples are real millivolts")
        signal = np.ma.filled(signal.astype(np.float64), np.nan)
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu()
        if signal.dtype == torch.bfloat16:
            signal = signal.float()
        signal = signal.numpy()
    try:
        raw = np.asarray(signal)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ShapeError(f"{record_id}: signal must be a numeric array ({exc})") from None
    kind = raw.dtype.kind
    if kind == "c":
        raise ShapeError(f"{record_id}: signal is complex ({raw.dtype}); ECG samples are real millivolts")
    if kind == "b":
        raise ShapeError(f"{record_id}: signal is boolean; ECG samples are real millivolts")
    if kind not in "iuf":
        what = {"U": "text", "S": "bytes", "O": "Python objects (None, text or mixed types?)"}.get(kind, str(raw.dtype))
        raise ShapeError(f"{record_id}: signal holds {what}, not numbers; pass a float array in millivolts "
                         "(convert text with np.asarray(values, dtype=float) after checking it)")
    return raw.astype(np.float64, copy=False)


def check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise LamaeError(f"batch_size must be a positive integer, got {batch_size!r}")


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> "Pretrained":
    """Load a pretrained model (checkpoint folder, or run folder: its latest checkpoint)."""
    from .train.common import pick_device

    if path is None or not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise LamaeError(f"load needs the path of a checkpoint or run folder, got {path!r}")
    device = pick_device(str(device))
    model, config = load_checkpoint(path)
    return Pretrained(model, Preprocessing.from_dict(config["preprocessing"]), config).to(device)


@dataclass
class Reconstruction:
    """Result of :meth:`Pretrained.reconstruct`, in the model's normalised units (per-lead z-scores).

    ``original`` and ``reconstruction`` are (12, samples) in the standard lead order; a row of
    ``original`` is NaN where the record has no such lead. ``errors`` gives, for each hidden
    lead, the MSE of the reconstruction, the MSE of predicting zeros (the lead's mean), and
    the correlation with the original.
    """

    fs: float
    original: np.ndarray
    reconstruction: np.ndarray
    inputs: list[str]
    hidden: list[str]
    missing: list[str]
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    lead_weights: dict[str, float] = field(default_factory=dict)
    record_id: str = "input"

    def plot(self, path: str | os.PathLike, title: str = "") -> None:
        """Draw the 12-lead grid with the rebuilt leads over the originals into ``path`` (PNG)."""
        from .plots import plot_ecg_grid

        plot_ecg_grid(self.original, self.fs, path, reconstruction=self.reconstruction,
                      highlight=self.hidden + self.missing, errors=self.errors, weights=self.lead_weights,
                      title=title)

    def save(self, out: str | os.PathLike) -> dict[str, Path]:
        """``reconstruction.png`` (the 12-lead grid, rebuilt leads drawn over the originals) and
        ``errors.json`` in the folder ``out``."""
        import json

        from .files import atomic_write_text

        out = output_dir(out, "reconstruct", writes=("reconstruction.png", "errors.json"))
        paths = {"plot": out / "reconstruction.png", "errors": out / "errors.json"}
        self.plot(paths["plot"], title=f"{self.record_id}: inputs {', '.join(self.inputs)}")
        atomic_write_text(paths["errors"], json.dumps({"record": self.record_id, "inputs": self.inputs,
                                                       "hidden": self.hidden, "missing": self.missing,
                                                       "errors": self.errors}, indent=2))
        return paths


class Pretrained:
    """A pretrained LAMAE with the preprocessing it was trained with."""

    def __init__(self, model: Lamae, preprocessing: Preprocessing, config: dict | None = None):
        self.model = model.eval()
        self.preprocessing = preprocessing
        self.config = config or {}
        self.device = torch.device("cpu")

    def to(self, device) -> "Pretrained":
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``, ...); returns the model."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @property
    def dim(self) -> int:
        return self.model.cfg.dim

    def __repr__(self) -> str:
        p = self.preprocessing
        return (f"Pretrained(LAMAE {self.model.num_parameters() / 1e6:.2f}M parameters, dim {self.dim}; "
                f"input {p.window_s:g} s at {p.fs:g} Hz, band-pass {p.bandpass}, {p.normalize}; "
                f"from {self.config.get('path', '?')})")

    # ------------------------------------------------------------------ input checks
    @property
    def min_fs(self) -> float:
        """Lowest input rate that still carries the band the model was trained on."""
        return self.preprocessing.min_input_fs

    def _check_input(self, signal, fs, leads, record_id: str):
        x = as_signal_array(signal, record_id)
        single = x.ndim == 2
        if x.ndim not in (2, 3):
            raise ShapeError(f"{record_id}: signal must be (leads, samples) or (ECGs, leads, samples), "
                             f"got shape {x.shape}")
        if single:
            x = x[None]
        if x.shape[0] == 0:
            raise ShapeError(f"{record_id}: an empty batch (shape {x.shape}): no ECG to embed")
        if x.shape[1] == 0:
            raise ShapeError(f"{record_id}: the signal has no leads (shape {x.shape})")
        if isinstance(leads, (set, frozenset)):
            raise LamaeError(f"{record_id}: leads given as a {type(leads).__name__}, which has no order, so the "
                             "names could not be matched to the signal's rows; pass a list in row order")
        if leads is None or isinstance(leads, str):
            raise LamaeError(f"{record_id}: leads must be a list naming each row of the signal, "
                             f"e.g. ['I', 'II', 'V1'], got {leads!r}")
        leads = list(leads)
        if len(leads) != x.shape[1]:
            hint = ("; it looks like (samples, leads): pass signal.T"
                    if x.shape[2] == len(leads) else "")
            raise ShapeError(f"{record_id}: {len(leads)} lead names for a signal with {x.shape[1]} rows "
                             f"(shape {tuple(np.shape(signal))}){hint}")
        leads = list(canonical_leads(leads, source=record_id))
        if isinstance(fs, (bool, np.bool_)):
            raise LamaeError(f"{record_id}: sampling rate must be a number in Hz, got {fs!r}")
        try:
            fs = float(fs)
        except (TypeError, ValueError):
            raise LamaeError(f"{record_id}: sampling rate must be a number, got {fs!r}") from None
        if not np.isfinite(fs) or fs <= 0:
            raise LamaeError(f"{record_id}: sampling rate must be positive, got {fs}")
        if fs > MAX_INPUT_FS:
            raise LamaeError(f"{record_id}: sampling rate {fs:g} Hz is above {MAX_INPUT_FS:g} Hz, higher than any "
                             "electrocardiograph records; check the rate's units")
        if fs < self.min_fs:
            raise LamaeError(f"{record_id}: {fs:g} Hz is too low for this model, which was trained on the "
                             f"{self.preprocessing.bandpass} Hz band; it needs at least {self.min_fs:g} Hz")
        seconds = x.shape[2] / fs
        need = self.preprocessing.window_s / 2
        if seconds < need:
            raise LamaeError(f"{record_id}: {seconds:.2f} s of signal; this model reads "
                             f"{self.preprocessing.window_s:g} s windows and needs at least {need:g} s")
        return x, fs, leads, single

    def _windows(self, ecg: np.ndarray, fs: float, leads: list[str], windows: str, record_id: str):
        """Preprocessed windows (W, L, n) and the mask of usable leads (L,)."""
        p = self.preprocessing
        problems = lead_problems(ecg, leads, max_invalid_fraction=p.max_invalid_fraction, fs=fs)
        usable = np.array([lead not in problems for lead in leads])
        if not usable.any():
            raise RecordError(record_id, "every lead is unusable: "
                              + "; ".join(f"{k} {v}" for k, v in problems.items()))
        if problems:
            warnings.warn(f"{record_id}: leads treated as absent: "
                          + "; ".join(f"{k} {v}" for k, v in problems.items()), stacklevel=3)
        ecg = np.where(usable[:, None], ecg, 0.0)
        out = preprocess_windows(ecg, fs, p, windows=windows, leads=leads, record_id=record_id)
        return out, usable

    def record_windows(self, signal, fs: float, leads, *, windows: str = "tile", record_id: str = "input"):
        """One ECG as model input: windows (W, 12, n) in the standard lead slots and the mask
        of present leads (W, 12). Checks the input like :meth:`embed`."""
        x, fs, leads, single = self._check_input(signal, fs, leads, record_id)
        if not single:
            raise ShapeError(f"{record_id}: one ECG (leads, samples) expected, got {x.shape[0]}")
        return self._slot_windows(x[0], fs, leads, windows, record_id)

    def _slot_windows(self, ecg: np.ndarray, fs: float, leads: list[str], windows: str, record_id: str):
        """Checked input of one ECG -> windows (W, 12, n) and present mask (W, 12)."""
        if windows not in WINDOWS:
            raise ValueError(f"windows must be one of {WINDOWS}, got {windows!r}")
        w, usable = self._windows(ecg, fs, leads, windows, record_id)
        slots = [LEAD_INDEX[lead] for lead in leads]
        out = np.zeros((len(w), len(STANDARD_LEADS), w.shape[2]), np.float32)
        out[:, slots] = w
        present = np.zeros((len(w), len(STANDARD_LEADS)), bool)
        present[:, slots] = usable
        return out, present

    @torch.no_grad()
    def embed_windows(self, windows: np.ndarray, present: np.ndarray, *, pooling: str = "latent",
                      batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (W, D) and lead weights (W, 12) of preprocessed 12-slot windows."""
        check_batch_size(batch_size)
        return embed_arrays(self.model, windows, present, batch_size=batch_size, pooling=pooling, device=self.device)

    # ------------------------------------------------------------------ embeddings
    def embed(self, signal, fs: float | None = None, leads=None, *, windows: str = "tile", pooling: str = "latent",
              batch_size: int = 64, return_weights: bool = False, record_id: str = "input"):
        """Embeddings (D,) for one ECG or (N, D) for several; with ``return_weights`` also the
        lead weights, (L,) or (N, L) in the order of ``leads`` (0 for leads treated as absent).

        ``signal`` may also be the path of an ECG file of any format :func:`lamae.read` reads:
        its own rate and leads are used (``fs`` and ``leads`` are then left out)."""
        check_batch_size(batch_size)
        if isinstance(signal, (str, os.PathLike)):
            from .data.readers import read

            if fs is not None or leads is not None:
                raise LamaeError(f"{signal}: a file brings its own rate and leads; pass fs and leads only with an array")
            path = str(signal)
            rec = read(path)
            signal, fs, leads = rec.signal, rec.fs, list(rec.leads)
            record_id = path if record_id == "input" else record_id
        x, fs, names, single = self._check_input(signal, fs, leads, record_id)
        wins, present, owner = [], [], []
        for i, ecg in enumerate(x):
            w, p = self._slot_windows(ecg, fs, names, windows, record_id if single else f"{record_id}[{i}]")
            wins.append(w)
            present.append(p)
            owner += [i] * len(w)
        feats, weights = self.embed_windows(np.concatenate(wins), np.concatenate(present), pooling=pooling,
                                            batch_size=batch_size)
        owner = np.asarray(owner)
        emb = np.stack([feats[owner == i].mean(0) for i in range(len(x))])
        lw = np.stack([weights[owner == i].mean(0) for i in range(len(x))])[:, [LEAD_INDEX[n] for n in names]]
        if single:
            emb, lw = emb[0], lw[0]
        return (emb, lw) if return_weights else emb

    def lead_weights(self, signal, fs: float, leads, **kwargs) -> dict[str, float]:
        """The adaptive lead weights of one ECG, by lead name."""
        if leads is not None and not isinstance(leads, (str, set, frozenset)):
            leads = list(leads)  # a generator is read once: by the check and by the names alike
        _, w = self.embed(signal, fs, leads, return_weights=True, **kwargs)
        if w.ndim != 1:
            raise ShapeError("lead_weights takes one ECG (leads, samples)")
        return dict(zip(canonical_leads(leads), map(float, w)))

    # ------------------------------------------------------------------ reconstruction
    @torch.no_grad()
    def reconstruct(self, signal, fs: float, leads, *, hide=(), window: str = "start",
                    record_id: str = "input") -> Reconstruction:
        """Fill in leads from the others: the leads in ``hide`` (withheld from the model, so
        their error can be measured) and every standard lead the record lacks."""
        from .eval.reconstruction import require_decoder

        require_decoder(self, "reconstruct")
        x, fs, leads, single = self._check_input(signal, fs, leads, record_id)
        if not single:
            raise ShapeError(f"{record_id}: reconstruct takes one ECG (leads, samples)")
        if isinstance(hide, str):  # one lead by name, not a sequence of letters
            hide = [hide]
        hide = list(canonical_leads(hide, source=record_id)) if hide else []
        unknown = [h for h in hide if h not in leads]
        if unknown:
            raise LamaeError(f"{record_id}: cannot hide {unknown}: not among the record's leads {leads}")
        if window not in ("start", "center"):
            raise ValueError(f"window must be 'start' or 'center', got {window!r}")
        w, usable = self._windows(x[0], fs, leads, window, record_id)
        unusable = [lead for lead, ok in zip(leads, usable) if lead in hide and not ok]
        if unusable:
            raise LamaeError(f"{record_id}: cannot hide {', '.join(unusable)}: the record's own "
                             f"{'lead is' if len(unusable) == 1 else 'leads are'} unusable (flat, saturated or "
                             "mostly missing), so there is nothing to measure the reconstruction against; it is "
                             "rebuilt as a missing lead without hiding it")
        inputs = [lead for lead, ok in zip(leads, usable) if ok and lead not in hide]
        if not inputs:
            raise LamaeError(f"{record_id}: no lead left as input after hiding {hide}")
        n = self.preprocessing.n_samples
        full = np.zeros((1, len(STANDARD_LEADS), n), np.float32)
        original = np.full((len(STANDARD_LEADS), n), np.nan, np.float32)
        for lead, row, ok in zip(leads, w[0], usable):
            if ok:
                full[0, LEAD_INDEX[lead]] = row
                original[LEAD_INDEX[lead]] = row
        have = {lead for lead, ok in zip(leads, usable) if ok}
        missing = [lead for lead in STANDARD_LEADS if lead not in have]
        targets = torch.ones(1, len(STANDARD_LEADS), dtype=torch.bool)
        drop = torch.tensor([[lead not in inputs for lead in STANDARD_LEADS]])
        out = self.model(torch.from_numpy(full).to(self.device), torch.arange(len(STANDARD_LEADS), device=self.device),
                         targets.to(self.device), mask_ratio=0.0, drop=drop.to(self.device))
        recon = out["pred"][0].reshape(len(STANDARD_LEADS), n).float().cpu().numpy()
        errors = {lead: lead_error(original[LEAD_INDEX[lead]], recon[LEAD_INDEX[lead]]) for lead in hide}
        lw = out["lead_weights"][0].float().cpu().numpy()
        weights = {lead: float(lw[LEAD_INDEX[lead]]) for lead in inputs}
        return Reconstruction(self.preprocessing.fs, original, recon, inputs, hide, missing, errors, weights,
                              record_id)

    def explain(self, signal, fs: float, leads, out: str | os.PathLike, *, windows: str = "tile",
                record_id: str = "input") -> dict[str, float]:
        """One ECG's adaptive lead weights, drawn: ``lead_weights.png`` (a bar per lead) and
        ``ecg.png`` (the first window as the model sees it, each lead shaded by its weight) in
        the folder ``out``. Returns the weights by lead name."""
        from .plots import plot_ecg_grid, plot_lead_weights

        weights = self.lead_weights(signal, fs, leads, windows=windows, record_id=record_id)
        out = output_dir(out, "explain", writes=("lead_weights.png", "ecg.png"))
        plot_lead_weights(weights, out / "lead_weights.png", title=f"{record_id}: latent attention over leads")
        w, _ = self.record_windows(signal, fs, leads, windows="start", record_id=record_id)
        grid = np.full(w[0].shape, np.nan, np.float32)
        for lead in weights:
            grid[LEAD_INDEX[lead]] = w[0, LEAD_INDEX[lead]]
        plot_ecg_grid(grid, self.preprocessing.fs, out / "ecg.png", weights=weights,
                      title=f"{record_id} (as the model sees it) with lead weights")
        return weights
