"""Synthetic ECGs laid out exactly like MIMIC-IV-ECG + MIMIC-IV-ECG-Ext-ICD.

Each heartbeat is a sum of Gaussian waves of a 3-D cardiac dipole (a vectorcardiogram in
Frank coordinates: X left, Y inferior, Z posterior, in mV). The dipole is projected onto the
12 leads with the Dower transform (Dower et al. 1980; 8 independent leads from X, Y, Z), so
the leads share the cross-lead structure of real ECGs: III, aVR, aVL and aVF follow from
Einthoven's and Goldberger's relations, and every precordial lead is a view of one field.
Conditions change the dipole the way they change a real heart's field, and each is mapped
to its ICD-10-CM code. Per-lead noise, baseline wander, mains hum and occasional NaN runs
make the leads imperfect copies of one another.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import LamaeError
from .wfdb_io import write_wfdb

MIMIC_LEAD_ORDER = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")
FS, DURATION_S, GAIN = 500, 10.0, 200.0

# Dower transform: rows I, II, V1..V6; columns X, Y, Z.
DOWER = np.array([
    [0.632, -0.235, 0.059],
    [0.235, 1.066, -0.132],
    [-0.515, 0.157, -0.917],
    [0.044, 0.164, -1.387],
    [0.882, 0.098, -1.277],
    [1.213, 0.127, -0.601],
    [1.125, 0.127, -0.086],
    [0.831, 0.076, 0.230],
])

# Conditions with an ECG signature, and the ICD-10-CM code a stay would carry for each.
CONDITION_CODES = {
    "atrial_fibrillation": "I4891",
    "lbbb": "I447",
    "rbbb": "I4510",
    "lvh": "I517",
    "stemi_anterior": "I2109",
    "stemi_inferior": "I2119",
    "sinus_bradycardia": "R001",
    "sinus_tachycardia": "R000",
    "av_block_1": "I440",
}
PATIENT_PREVALENCE = {
    "atrial_fibrillation": 0.12, "lbbb": 0.07, "rbbb": 0.08, "lvh": 0.12,
    "stemi_anterior": 0.05, "stemi_inferior": 0.05, "av_block_1": 0.08,
}
# Comorbidities with no direct ECG signature (some correlate with conditions, as in real data).
COMORBIDITIES = {"E785": 0.30, "I10": 0.30, "E119": 0.20, "N179": 0.10, "I2510": 0.15, "Z7901": 0.03}
# Of those, independent of every condition: a probe can only be at chance on these.
NO_SIGNATURE_CODES = ("E785", "E119", "N179")


def _derive_limb_leads(eight: np.ndarray) -> dict[str, np.ndarray]:
    """Rows I, II, V1..V6 -> all 12 leads (Einthoven's and Goldberger's relations)."""
    lead_i, lead_ii = eight[0], eight[1]
    out = {
        "I": lead_i, "II": lead_ii, "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2,
    }
    out.update({f"V{k + 1}": eight[2 + k] for k in range(6)})
    return out


def twelve_leads_from_vcg(vcg: np.ndarray, dower: np.ndarray = DOWER) -> dict[str, np.ndarray]:
    """Project a (3, n) dipole onto the 12 leads."""
    return _derive_limb_leads(dower @ vcg)


@dataclass
class Patient:
    subject_id: int
    conditions: frozenset
    axis_deg: float
    r_amp: float
    heart_rate: float
    comorbid: tuple
    age: int
    gender: str


def _rot_frontal(v, deg):
    a = np.deg2rad(deg)
    x, y, z = v
    return np.array([x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a), z])


def simulate_ecg(rng: np.random.Generator, conditions: set, *, axis_deg=45.0, r_amp=1.2,
                 heart_rate=72.0, fs=FS, duration_s=DURATION_S) -> np.ndarray:
    """One 12-lead ECG (12, n) in mV, MIMIC lead order, for a set of condition names."""
    # Long on purpose (84 lines): one recipe read top to bottom (rhythm, beat times, each wave of
    # the dipole as the conditions shape it, projection, noise). Each condition touches several
    # of these steps, so split into functions they would pass most of these variables around.
    n = int(round(fs * duration_s))
    t = np.arange(n) / fs
    af = "atrial_fibrillation" in conditions
    hr = heart_rate
    if "sinus_bradycardia" in conditions:
        hr = rng.uniform(38, 54)
    elif "sinus_tachycardia" in conditions:
        hr = rng.uniform(105, 150)
    elif af:
        hr = rng.uniform(70, 130)
    rr_mean = 60.0 / hr

    # Beat times: regular with mild variability in sinus rhythm, irregularly irregular in AF.
    beats, tb = [], rng.uniform(-rr_mean, 0.0)
    while tb < duration_s + 0.5:
        beats.append(tb)
        jitter = rng.lognormal(0, 0.2) if af else 1 + rng.normal(0, 0.03)
        tb += rr_mean * jitter
    beats = np.array(beats)

    axis = axis_deg + rng.normal(0, 4)
    r_vec = _rot_frontal(np.array([1.0, 0.0, 0.35]), axis) * r_amp
    q_vec = np.array([-0.10, 0.05, -0.15])
    s_vec = np.array([-0.25, -0.30, 0.35])
    t_vec = _rot_frontal(np.array([0.30, 0.0, -0.12]), axis * 0.8)
    p_vec = np.array([0.08, 0.12, -0.02])
    pr = rng.uniform(0.13, 0.19)
    if "av_block_1" in conditions:
        pr = rng.uniform(0.24, 0.32)
    waves = []  # (offset from QRS onset, sigma, vector)
    if "lvh" in conditions:
        r_vec = r_vec * 1.9 + np.array([0.2, 0.0, 0.5])
        s_vec = s_vec * 1.8
        t_vec = np.array([-0.22, -0.05, 0.18])  # strain pattern
    if "lbbb" in conditions:
        waves += [(0.04, 0.022, np.array([0.7, 0.15, 0.6]) * r_amp),
                  (0.09, 0.022, np.array([0.6, 0.1, 0.8]) * r_amp)]
        t_vec = np.array([-0.3, -0.05, -0.25])
    else:
        waves += [(0.015, 0.008, q_vec), (0.045, 0.011, r_vec), (0.075, 0.010, s_vec)]
        if "rbbb" in conditions:
            waves.append((0.115, 0.02, np.array([-0.55, 0.05, -0.65])))
            t_vec = t_vec + np.array([0.0, 0.0, 0.15])
    for name, st_vec in (("stemi_anterior", np.array([0.05, 0.0, -0.28])),
                         ("stemi_inferior", np.array([-0.02, 0.28, 0.02]))):
        if name in conditions:
            waves.append((0.20, 0.07, st_vec))
            t_vec = t_vec + st_vec * 0.8

    centres, sigmas, vectors = [], [], []
    for b in beats:
        rr = rr_mean
        qt_t = 0.30 * np.sqrt(rr)
        for off, sig, vec in waves:
            centres.append(b + off); sigmas.append(sig); vectors.append(vec)
        centres.append(b + 0.10 + qt_t); sigmas.append(0.045 + 0.01 * rr); vectors.append(t_vec)
        if not af:
            centres.append(b - pr + 0.05); sigmas.append(0.022); vectors.append(p_vec)
    c, s, v = np.array(centres), np.array(sigmas), np.array(vectors)
    g = np.exp(-0.5 * ((t[None, :] - c[:, None]) / s[:, None]) ** 2)
    vcg = v.T @ g
    if af:  # fibrillatory waves, strongest in the right-anterior direction (V1)
        for _ in range(3):
            f = rng.uniform(4, 9)
            vcg += np.outer(np.array([-0.3, 0.3, -1.0]) * rng.uniform(0.02, 0.05),
                            np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)))

    # Electrode placement and torso vary: perturb the projection a little per ECG. Noise,
    # wander and hum hit the 8 measured leads; III, aVR, aVL, aVF are then derived from the
    # noisy I and II, as an electrocardiograph does, so Einthoven's law holds exactly.
    dower = DOWER * (1 + rng.normal(0, 0.08, DOWER.shape))
    measured = dower @ vcg
    measured += rng.normal(0, rng.uniform(0.005, 0.02), measured.shape)
    for i in range(measured.shape[0]):
        for _ in range(2):
            measured[i] += rng.uniform(0.02, 0.2) * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t
                                                           + rng.uniform(0, 6.3))
    measured += rng.uniform(0, 0.015) * np.sin(2 * np.pi * 60 * t)[None, :]
    leads = _derive_limb_leads(measured)
    x = np.stack([leads[name] for name in MIMIC_LEAD_ORDER])
    return x


def _make_patients(n_patients: int, rng: np.random.Generator) -> list[Patient]:
    patients = []
    for k in range(n_patients):
        cond = {c for c, p in PATIENT_PREVALENCE.items() if rng.random() < p}
        if {"lbbb", "rbbb"} <= cond:
            cond.discard("rbbb")
        if "atrial_fibrillation" in cond:
            cond.discard("av_block_1")
        if {"stemi_anterior", "stemi_inferior"} <= cond:
            cond.discard("stemi_inferior")
        comorbid = []
        for code, p in COMORBIDITIES.items():
            p = p + (0.65 if code == "Z7901" and "atrial_fibrillation" in cond else 0)
            p = p + (0.3 if code == "I10" and "lvh" in cond else 0)
            p = p + (0.4 if code == "I2510" and cond & {"stemi_anterior", "stemi_inferior"} else 0)
            if rng.random() < p:
                comorbid.append(code)
        patients.append(Patient(
            subject_id=10000000 + 37 * k + int(rng.integers(0, 37)),
            conditions=frozenset(cond),
            axis_deg=float(rng.uniform(-20, 85)),
            r_amp=float(rng.uniform(0.8, 1.6)),
            heart_rate=float(rng.uniform(58, 98)),
            comorbid=tuple(comorbid),
            age=int(rng.integers(18, 91)),
            gender=str(rng.choice(["M", "F"])),
        ))
    return patients


def _ecg_conditions(patient: Patient, rng: np.random.Generator, is_first: bool) -> set:
    cond = set()
    for c in patient.conditions:
        if c == "atrial_fibrillation" and rng.random() < 0.25:
            continue  # paroxysmal: sinus rhythm on some ECGs
        if c.startswith("stemi") and not is_first:
            continue  # an acute event, seen on the patient's first ECG only
        cond.add(c)
    if "atrial_fibrillation" not in cond:
        u = rng.random()
        if u < 0.08:
            cond.add("sinus_bradycardia")
        elif u < 0.16:
            cond.add("sinus_tachycardia")
    return cond


def _record_job(args):
    root, rel_path, seed, conds, pat_axis, pat_amp, pat_hr, ecg_time, nan_run = args
    rng = np.random.default_rng(seed)
    x = simulate_ecg(rng, set(conds), axis_deg=pat_axis, r_amp=pat_amp, heart_rate=pat_hr)
    if nan_run:
        lead, start, length = nan_run
        x[lead, start:start + length] = np.nan
    out = Path(root) / rel_path
    out.parent.mkdir(parents=True, exist_ok=True)
    write_wfdb(out.name, out.parent, x, MIMIC_LEAD_ORDER, FS, gain=GAIN,
               base_time=ecg_time.time(), base_date=ecg_time.date())


def synthesize_mimic(out_dir: str | os.PathLike, n_records: int = 1000, *, seed: int = 0,
                     ecgs_per_patient: float = 3.0, nan_fraction: float = 0.03,
                     unlabeled_fraction: float = 0.15, workers: int = 1,
                     progress: bool = True, layout: str = "v1") -> Path:
    """Write ``n_records`` ECGs + record_list.csv + records_w_diag_icd10.csv into ``out_dir``.

    ``layout``: ``v1``, MIMIC-IV-ECG v1.0's ``files/p1000/p10000032/s40689238/40689238``, or
    ``demo``, the open demo v0.1's ``files/p10000032/s107143276/107143276`` (no group folder,
    9-digit study ids). Records already on disk (same seed) are not written again, so an
    interrupted run resumes.
    """
    if layout not in ("v1", "demo"):
        raise ValueError(f"layout must be 'v1' or 'demo', got {layout!r}")
    if isinstance(n_records, bool) or not isinstance(n_records, int) or n_records < 1:
        raise ValueError(f"the number of records must be a positive integer, got {n_records!r}")
    from ..files import claim_output, refuse_lamae_folder

    if out_dir is None or not str(out_dir).strip():
        raise LamaeError(f"output folder {out_dir!r}: name a folder to write into")
    refuse_lamae_folder(out_dir)  # never a dataset inside a store or a checkpoint
    out = claim_output(out_dir, "synth", writes=("record_list.csv", "records_w_diag_icd10.csv", "files"))
    rng = np.random.default_rng(seed)
    n_patients = max(1, int(round(n_records / ecgs_per_patient)))
    patients = _make_patients(n_patients, rng)
    owner = np.sort(np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n_records - n_patients)])) \
        if n_records >= n_patients else np.arange(n_records)
    study_ids = 40000000 + rng.choice(9_999_999, size=n_records, replace=False)
    folds = rng.integers(0, 20, n_patients)

    jobs, rows, label_rows = [], [], []
    seen_count: dict[int, int] = {}
    for i in range(n_records):
        p = patients[owner[i]]
        k = seen_count.get(owner[i], 0)
        seen_count[owner[i]] = k + 1
        cond = _ecg_conditions(p, rng, is_first=(k == 0))
        sid, study = p.subject_id, int(study_ids[i])
        if layout == "demo":
            study += 60_000_000  # the demo's study ids have 9 digits
            rel = f"files/p{sid}/s{study}/{study}"
        else:
            rel = f"files/p{str(sid)[:4]}/p{sid}/s{study}/{study}"
        ecg_time = dt.datetime(2180, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3650)),
                                                           seconds=int(rng.integers(0, 86400)))
        nan_run = None
        if rng.random() < nan_fraction:
            nan_run = (int(rng.integers(0, 12)), int(rng.integers(0, 4900)), int(rng.integers(5, 60)))
        jobs.append((str(out), rel, int(rng.integers(2**31)), tuple(sorted(cond)),
                     p.axis_deg, p.r_amp, p.heart_rate, ecg_time, nan_run))
        rows.append({"subject_id": sid, "study_id": study, "file_name": study,
                     "ecg_time": ecg_time.strftime("%Y-%m-%d %H:%M:%S"), "path": rel})
        codes = [CONDITION_CODES[c] for c in sorted(cond) if rng.random() < 0.92] + list(p.comorbid)
        if rng.random() < unlabeled_fraction:
            codes = []  # ECG not linked to an ED or hospital stay
        ed = [c for c in codes if rng.random() < 0.6]
        label_rows.append({
            "file_name": rel, "study_id": study, "subject_id": sid, "ecg_time": rows[-1]["ecg_time"],
            "ed_stay_id": 30000000 + i if codes else None, "ed_hadm_id": None,
            "hosp_hadm_id": 20000000 + i if codes else None,
            "ed_diag_ed": repr(ed), "ed_diag_hosp": repr(ed), "hosp_diag_hosp": repr(codes),
            "all_diag_hosp": repr(codes), "all_diag_all": repr(codes),
            "gender": p.gender, "age": p.age, "anchor_year": 2180, "anchor_age": p.age, "dod": None,
            "ecg_no_within_stay": k, "ecg_taken_in_ed": bool(codes), "ecg_taken_in_hosp": bool(codes),
            "ecg_taken_in_ed_or_hosp": bool(codes), "fold": int(folds[owner[i]]),
            "strat_fold": int(folds[owner[i]]),
        })
    todo = [j for j in jobs if not (out / (j[1] + ".hea")).exists() or not (out / (j[1] + ".dat")).exists()]
    bar = tqdm(total=len(todo), desc="synth", unit="rec", disable=not progress)
    if workers > 1 and len(todo) > 50:
        with ProcessPoolExecutor(workers) as ex:
            for _ in ex.map(_record_job, todo, chunksize=32):
                bar.update()
    else:
        for j in todo:
            _record_job(j)
            bar.update()
    bar.close()
    # Written last, atomically: their presence means the dataset is complete.
    for name, frame in (("records_w_diag_icd10.csv", pd.DataFrame(label_rows)),
                        ("record_list.csv", pd.DataFrame(rows))):
        tmp = out / (name + ".tmp")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, out / name)
    return out
