"""The ``lamae`` command: synth -> prepare -> pretrain -> probe / embed / finetune / reconstruct, and more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import LamaeError
from .tracking import TRACKERS

# the dataset layouts --format takes: data.readers.READERS's names (kept here so that building
# the parser imports no data code; a test checks the two agree)
FORMATS = ["auto", "wfdb", "mimic", "ptbxl", "challenge", "code15", "ptb", "edf", "dicom",
           "muse", "philips", "aecg", "scp", "ishne", "mfer", "mortara"]
FORMAT_HELP = ("auto: each file by its content (WFDB, EDF, DICOM and every format below; a folder may mix "
               "them); mimic: MIMIC-IV-ECG (v1.0 and the demo's layout) + Ext-ICD labels; ptbxl: PTB-XL with "
               "a task's labels and the strat_fold split; challenge: PhysioNet/CinC or CPSC .mat+.hea with "
               "SNOMED labels; code15: CODE-15%% .mat + meta.csv; ptb: PTB Diagnostic (12 of 15 channels); "
               "wfdb: any WFDB folder; edf: EDF/EDF+/BDF; dicom: DICOM ECG waveforms; muse: GE MUSE XML; "
               "philips: Philips Sierra XML; aecg: HL7 aECG; scp: SCP-ECG; ishne: ISHNE Holter; mfer: MFER; "
               "mortara: Mortara ELI XML (edf and dicom need pip install 'lamae[formats]')")


def _add_derive(p):
    p.add_argument("--derive-limb-leads", action="store_true",
                   help="files that store 8 leads (MUSE: I, II, V1-V6): add III, aVR, aVL and aVF computed from "
                        "I and II (Einthoven, Goldberger); the store and tables record which leads were derived")
# the members `lamae pretrain --model` trains: models.family.PRETRAINABLE (same reason, same test)
PRETRAINABLE = ["LAMAE", "LAMAE-attn", "LAMAE-summary", "LAMAE-global", "LAMAE-mean", "IndS", "IndP", "MVMAE", "Joint", "CPC", "S4-MAE", "S4-LAMAE", "S4-IndS"]


def _add_tracker(p, default=None):
    p.add_argument("--tracker", choices=TRACKERS, default=default,
                   help="where to log loss, learning rate, gradient norm, throughput and results: csv "
                        "(metrics.csv, the default), tensorboard or wandb (pip install 'lamae[tracking]')")


def _add_synth(sub):
    p = sub.add_parser("synth", help="write a synthetic MIMIC-IV-ECG-style dataset with ICD-10 labels")
    p.add_argument("out", help="output folder (new, empty, or one an earlier `lamae synth` wrote)")
    p.add_argument("--records", type=int, default=1000, help="number of ECGs (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes writing records")
    p.add_argument("--layout", default="v1", choices=["v1", "demo"],
                   help="MIMIC-IV-ECG v1.0's folders (files/p1000/p10000032/s40689238/40689238) or the open "
                        "demo v0.1's (files/p10000032/s107143276/107143276)")
    p.set_defaults(func=cmd_synth)


def cmd_synth(a):
    from .data.synth import synthesize_mimic

    out = synthesize_mimic(a.out, a.records, seed=a.seed, workers=a.workers, layout=a.layout)
    print(f"wrote {a.records} records to {out}")


def _prep_args(p):
    p.add_argument("--fs", type=float, default=100.0, help="target sampling rate in Hz (default 100)")
    p.add_argument("--window", type=float, default=10.0, help="window length in seconds (default 10)")
    p.add_argument("--bandpass", type=float, nargs=2, default=[0.5, 40.0], metavar=("LOW", "HIGH"),
                   help="zero-phase band-pass in Hz (default 0.5 40)")
    p.add_argument("--no-bandpass", action="store_true", help="disable the band-pass filter")
    p.add_argument("--normalize", default="lead_zscore", choices=["lead_zscore", "ecg_zscore", "none"],
                   help="lead_zscore: every lead to mean 0, std 1; ecg_zscore: every lead to mean 0 and one "
                        "scale for the whole ECG (keeps the amplitude ratios between leads); none")


def _preprocessing(a):
    from .data.preprocess import Preprocessing

    return Preprocessing(fs=a.fs, window_s=a.window, bandpass=None if a.no_bandpass else tuple(a.bandpass),
                         normalize=a.normalize)


def _add_prepare(sub):
    p = sub.add_parser("prepare", help="convert a dataset once into a packed, memory-mapped store")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--out", required=True, help="store folder")
    p.add_argument("--format", default="mimic", choices=FORMATS,
                   help="dataset layout (default mimic, whose labels come from its tables). " + FORMAT_HELP)
    _add_derive(p)
    p.add_argument("--task", default="superdiagnostic",
                   help="PTB-XL task: all, diagnostic, subdiagnostic, superdiagnostic, form, rhythm")
    p.add_argument("--source-rate", type=int, default=500, choices=[100, 500],
                   help="PTB-XL: read records100 or records500 (default 500)")
    p.add_argument("--labels", help="records_w_diag_icd10.csv (default: the one in DATA, if any)")
    p.add_argument("--label-column", default="all_diag_all",
                   help="Ext-ICD diagnosis column (default all_diag_all)")
    _prep_args(p)
    p.add_argument("--split-seed", type=int, default=0, help="seed of the patient-level 70/15/15 split")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--chunk-size", type=int, default=256, help="records between progress saves")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--min-length", type=float, metavar="SECONDS",
                   help="skip (and report) records shorter than this (default: half the window)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an existing or unfinished store (only a store lamae wrote, holding nothing else: "
                        "never a run, logs, the input, the current, home or root folder)")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(a):
    from .data.readers import open_source
    from .data.store import prepare

    kwargs = {"mimic": {"labels": a.labels, "label_column": a.label_column},
              "ptbxl": {"task": a.task, "rate": a.source_rate}}.get(a.format, {})
    source = open_source(a.format, a.data, derive_limb_leads=a.derive_limb_leads, **kwargs)
    store = prepare(source, a.out, _preprocessing(a), split_seed=a.split_seed, chunk_size=a.chunk_size,
                    workers=a.workers, overwrite=a.overwrite, limit=a.limit, min_length_s=a.min_length)
    m = store.meta
    tables = f", {m['n_table_problems']} rows of its tables not read" if m.get("n_table_problems") else ""
    print(f"store {store.path}: {m['n_rows']} records stored, {m['n_skipped']} skipped{tables} "
          f"(see {store.path / 'report.md'})")


def _add_verify(sub):
    p = sub.add_parser("verify", help="check every row of a store against its checksum")
    p.add_argument("store")
    p.set_defaults(func=cmd_verify)


def cmd_verify(a):
    from .data.store import EcgStore

    store = EcgStore(a.store, verify=True)
    meta = ("meta.json, " if "meta_sha256" in store.meta
            else "meta.json is consistent but has no checksum (written by an older lamae); ")
    print(f"{store.path}: {len(store)} records, {meta}index and every row match their checksums")


def _add_pretrain(sub):
    p = sub.add_parser("pretrain", help="pretrain LAMAE on a store (masked-patch reconstruction)")
    p.add_argument("--store", help="store folder made by `lamae prepare`")
    p.add_argument("--out", help="run folder (checkpoints, loss.csv, loss.png)")
    p.add_argument("--config", help="YAML file with PretrainConfig fields")
    p.add_argument("--size", choices=["tiny", "small", "base"])
    p.add_argument("--model", dest="architecture", metavar="NAME",
                   help=f"a member of the model family: {', '.join(PRETRAINABLE)} (default LAMAE; see `lamae models`)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--base-lr", type=float, help="lr = base_lr * batch_size / 256")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--workers", dest="num_workers", type=int, help="data loader worker processes")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--grad-accum", type=int, help="micro-batches per step (same step, less memory)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--seed", type=int)
    p.add_argument("--lead-dropout", type=float,
                   help="chance each lead is hidden from the encoder and reconstructed from the others "
                        "(teaches reduced lead sets and lead reconstruction); default: the model's "
                        "recommendation, 0.25 for LAMAE and 0 for the others")
    p.add_argument("--limb-dropout", type=float,
                   help="chance that all six limb leads of an ECG are hidden together (e.g. 0.1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set model.router_latents=4 --set warmup_steps=50")
    _add_tracker(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.set_defaults(func=cmd_pretrain)


def pretrain_config_from_args(a):
    from .config import build_config
    from .train.pretrain import PretrainConfig

    keys = ("store", "out", "size", "architecture", "steps", "batch_size", "base_lr", "checkpoint_every",
            "num_workers", "device", "seed", "grad_accum", "compile", "lead_dropout", "limb_dropout", "tracker")
    cfg = build_config(PretrainConfig, yaml_path=a.config, flags={k: getattr(a, k, None) for k in keys},
                       overrides=a.set)
    if not cfg.store:
        raise LamaeError("pretrain needs --store (or `store:` in --config)")
    return cfg


def cmd_pretrain(a):
    from .train.pretrain import pretrain

    cfg = pretrain_config_from_args(a)
    check_output("pretrain", cfg.out)
    r = pretrain(cfg, resume=a.resume)
    if r["rank"] != 0:  # under torchrun, one process reports
        return
    if r.get("already_finished"):
        more = (f"; --steps {r['asked_steps']} asks for fewer, so nothing to do" if r["asked_steps"] < r["steps"]
                else "; nothing to do")
        print(f"{r['out']}: this run is already finished ({r['steps']} steps trained, final loss {r['final_loss']:.4f}, "
              f"{r['seconds']:.0f} s of training){more} (raise --steps above {r['steps']} to train further)")
        return
    print(f"pretrained {cfg.architecture}, {r['parameters'] / 1e6:.2f}M parameters for {r['steps']} steps in {r['seconds']:.0f} s; "
          f"final loss {r['final_loss']:.4f}; run folder {r['out']}")
    rate = r.get("ecgs_per_s") or 0.0
    if rate > 0:  # what a pass over MIMIC-IV-ECG would take at this run's rate (start-up included)
        print(f"throughput {rate:.1f} ECGs/s over the run: one pass over 800,000 ECGs (MIMIC-IV-ECG) would take "
              f"{800_000 / rate / 3600:.1f} h at this rate on this device")


def _add_probe(sub):
    p = sub.add_parser("probe", help="linear-probe a frozen checkpoint on ICD-10 hierarchy nodes")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run folder (latest)")
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="folder for probe.md, probe.json, roc.png")
    p.add_argument("--min-prevalence", type=float, default=0.01)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--pooling", default="latent", choices=["latent", "leads"],
                   help="latent: LAMAE's aggregator; leads: mean of per-lead CLS (LAMAE_E)")
    p.add_argument("--no-random-baseline", action="store_true",
                   help="skip the frozen randomly initialised encoder column")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_probe)


def cmd_probe(a):
    from .eval.probe import run_probe

    report = run_probe(a.checkpoint, a.store, a.out, min_prevalence=a.min_prevalence, min_count=a.min_count,
                       pooling=a.pooling, random_baseline=not a.no_random_baseline, device=a.device)
    print((Path(a.out) / "probe.md").read_text())
    return report


def _add_compare(sub):
    p = sub.add_parser("compare", help="LAMAE against the baselines: matched controls, seeds, paired tests")
    p.add_argument("config", nargs="?", help="YAML file with CompareConfig fields (see configs/compare.yaml)")
    p.add_argument("--store", help="store folder (overrides the config)")
    p.add_argument("--out", help="results folder (overrides the config)")
    p.add_argument("--models", nargs="+", help="models to compare (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2 3 4)")
    p.add_argument("--pairs", nargs="+", metavar="A:B",
                   help="also paired tests of model A against B at each label fraction, e.g. CPC:S4-MAE "
                        "(LAMAE is always tested against every model)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set pretrain.steps=500 --set model.n_latents=8")
    _add_tracker(p)
    p.set_defaults(func=cmd_compare)


def cmd_compare(a):
    from .config import build_config
    from .eval.compare import CompareConfig, run_compare

    cfg = build_config(CompareConfig, yaml_path=a.config,
                       flags={k: getattr(a, k) for k in ("store", "out", "models", "seeds", "pairs", "tracker")},
                       overrides=a.set)
    if not cfg.store:
        raise LamaeError("compare needs a store (--store or `store:` in the config)")
    check_output("compare", cfg.out)
    report = run_compare(cfg)
    print((Path(cfg.out) / "compare.md").read_text())
    print(f"compare took {report['seconds']:.0f} s; results in {cfg.out}")


def _add_benchmark(sub):
    p = sub.add_parser("benchmark", help="published protocols: PTB-XL tasks in LP / Frozen / FT modes, with CIs")
    p.add_argument("suite", choices=["ptbxl", "mimic"], help="benchmark suite")
    p.add_argument("--data", required=True,
                   help="PTB-XL folder, or MIMIC-IV-ECG folder with records_w_diag_icd10.csv")
    p.add_argument("--scenario", default="mimic_all_all_all_all_2000_5A",
                   help="MIMIC-ICD scenario, e.g. mimic_ed_all_edfirst_all_2000_5A")
    p.add_argument("--out", default="results/ptbxl")
    p.add_argument("--checkpoint", help="checkpoint or run folder; without it one is pretrained first")
    p.add_argument("--tasks", nargs="+", help="default: all six tasks")
    p.add_argument("--modes", nargs="+", choices=["lp", "frozen", "ft"],
                   help="default: lp frozen ft (ptbxl), lp (mimic)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override settings, e.g. --set pretrain.steps=500 --set finetune.steps=200")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(a):
    from .config import build_config
    from .eval.benchmark import (BenchmarkConfig, MimicBenchmarkConfig, check_data, run_mimic_benchmark,
                                 run_ptbxl_benchmark)

    if a.suite == "mimic":
        cfg = build_config(MimicBenchmarkConfig, overrides=a.set, flags={
            "data": a.data, "out": a.out if a.out != "results/ptbxl" else "results/mimic-icd",
            "checkpoint": a.checkpoint, "n_boot": a.n_boot, "scenario": a.scenario, "modes": a.modes or None})
        run_mimic_benchmark(cfg)
        print((Path(cfg.out) / "benchmark.md").read_text())
        return
    check_data(a.data)
    cfg = build_config(BenchmarkConfig, overrides=a.set, flags={
        "data": a.data, "out": a.out, "checkpoint": a.checkpoint, "n_boot": a.n_boot,
        "tasks": a.tasks or None, "modes": a.modes or None})
    run_ptbxl_benchmark(cfg)
    print((Path(cfg.out) / "benchmark.md").read_text())


def _add_embed(sub):
    p = sub.add_parser("embed", help="export embeddings and lead weights for a whole dataset")
    p.add_argument("data", help="dataset folder (any leads and rates) or a store made by `lamae prepare`")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run folder (latest)")
    p.add_argument("--out", required=True, help="output file: .parquet (table) or .npy (+ .records.csv)")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="dataset layout (default auto: each file by its content). " + FORMAT_HELP)
    _add_derive(p)
    p.add_argument("--pooling", default="latent", choices=["latent", "leads"])
    p.add_argument("--windows", default="tile", choices=["tile", "start", "center"],
                   help="records longer than the model's window: average over consecutive windows (tile) "
                        "or use one")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=512, help="records between progress saves")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_embed)


def cmd_embed(a):
    from .embed import embed_dataset

    r = embed_dataset(a.checkpoint, a.data, a.out, fmt=a.format, pooling=a.pooling, windows=a.windows,
                      batch_size=a.batch_size, chunk_size=a.chunk_size, limit=a.limit, device=a.device,
                      derive_limb_leads=a.derive_limb_leads)
    print(f"{r['n_records']} embeddings of dimension {r['dim']} -> {r['out']}; "
          f"{r['n_skipped']} records skipped (listed in {r['skipped']})")


def _add_finetune(sub):
    p = sub.add_parser("finetune", help="probe or fine-tune a checkpoint on your own labels (CSV + WFDB folder)")
    p.add_argument("data", help="dataset folder (any format lamae reads, detected per file by default)")
    p.add_argument("--labels", required=True, help="CSV: record id column + a `labels` list column, or 0/1 columns")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="folder for the store, report.md/json, roc.png and the model")
    p.add_argument("--mode", default="probe", choices=["probe", "finetune"],
                   help="probe: linear probe on frozen embeddings; finetune: train encoder + head")
    p.add_argument("--format", default="auto", choices=FORMATS, help="dataset layout (default auto). " + FORMAT_HELP)
    _add_derive(p)
    p.add_argument("--id-column", default="record_id")
    p.add_argument("--label-column", default="labels")
    p.add_argument("--patient-column", help="split by this column (default: by record)")
    p.add_argument("--min-count", type=int, default=5, help="labels need this many training positives")
    p.add_argument("--steps", type=int, default=500, help="finetune: optimizer steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--base-lr", type=float, default=1e-3, help="finetune: lr = base_lr * batch / 256")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cpu")
    _add_tracker(p, default="csv")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(a):
    from .finetune import finetune

    finetune(a.checkpoint, a.data, a.labels, a.out, fmt=a.format, mode=a.mode, id_column=a.id_column,
             label_column=a.label_column, patient_column=a.patient_column, min_count=a.min_count,
             steps=a.steps, batch_size=a.batch_size, base_lr=a.base_lr, seed=a.seed, device=a.device,
             workers=a.workers, tracker=a.tracker, derive_limb_leads=a.derive_limb_leads)
    print((Path(a.out) / "report.md").read_text())


def _add_reconstruct(sub):
    p = sub.add_parser("reconstruct", help="fill in hidden or missing leads from the others; plot and per-lead error")
    p.add_argument("record", help="an ECG file of any format lamae reads (a WFDB record with or without .hea, "
                                  "EDF, DICOM, MUSE, HL7 aECG, ...), or a store: then the hidden leads are "
                                  "reconstructed for every record of --split and errors averaged")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="test", help="store mode: which split (default test)")
    p.add_argument("--hide", nargs="*", default=[], metavar="LEAD",
                   help="leads to withhold and reconstruct (their error is measured), e.g. --hide V1 V2")
    p.add_argument("--window", default="start", choices=["start", "center"])
    p.add_argument("--out", required=True, help="folder for reconstruction.png and errors.json")
    p.set_defaults(func=cmd_reconstruct)


def cmd_reconstruct(a):
    from . import load
    from .data.readers import read as read_ecg

    model = load(a.checkpoint)
    out = Path(a.out)
    if (Path(a.record) / "meta.json").exists():
        from .eval.reconstruction import save_store_errors

        errs = save_store_errors(model, a.record, a.hide, out, split=a.split)
        print(f"{'lead':<5}{'ECGs':>6}{'MSE':>8}{'zeros':>8}{'nMSE':>7}{'corr':>7}   "
              "(store units, mean over ECGs; nMSE = MSE / MSE of zeros)")
        for lead, e in errs.items():
            print(f"{lead:<5}{e['n']:>6}{e['mse']:>8.3f}{e['mse_zeros']:>8.3f}{e['nmse']:>7.3f}{e['corr']:>7.2f}")
        return
    rec = read_ecg(a.record)
    r = model.reconstruct(rec.signal, rec.fs, rec.leads, hide=a.hide, window=a.window, record_id=rec.record_id)
    paths = r.save(out)
    print(f"inputs: {', '.join(r.inputs)}; reconstructed: {', '.join(r.hidden + r.missing) or 'none'}")
    if r.errors:
        print(f"{'lead':<5}{'MSE':>8}{'zeros':>8}{'corr':>7}   (normalised units)")
        for lead, e in r.errors.items():
            print(f"{lead:<5}{e['mse']:>8.3f}{e['mse_zeros']:>8.3f}{e['corr']:>7.2f}")
    print(f"plot: {paths['plot']}")


def _add_explain(sub):
    p = sub.add_parser("explain", help="one ECG's lead weights (the adaptive weighting) as plots")
    p.add_argument("record", help="an ECG file of any format lamae reads (WFDB record, EDF, DICOM, MUSE, ...)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="folder for lead_weights.png and ecg.png")
    p.add_argument("--windows", default="tile", choices=["tile", "start", "center"])
    p.set_defaults(func=cmd_explain)


def cmd_explain(a):
    from . import load
    from .data.readers import read as read_ecg

    model = load(a.checkpoint)  # a damaged checkpoint is named before the record is read
    rec = read_ecg(a.record)
    weights = model.explain(rec.signal, rec.fs, rec.leads, a.out, windows=a.windows,
                                         record_id=rec.record_id)
    for lead, v in sorted(weights.items(), key=lambda kv: -kv[1]):
        print(f"{lead:<4} {v:.3f}")
    print(f"plots: {Path(a.out) / 'lead_weights.png'}, {Path(a.out) / 'ecg.png'}")


def _add_leads(sub):
    p = sub.add_parser("leads", help="probe AUROC with 1, 2, 3, 6, 8 and 12 leads, for one or more checkpoints")
    p.add_argument("--store", required=True, help="labelled store")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH",
                   help="repeat for each model, e.g. --checkpoint LAMAE=runs/lamae --checkpoint Joint=runs/joint; "
                        "a name given several times (its seeds) is reported as mean ± sd over them")
    p.add_argument("--out", required=True)
    p.add_argument("--sets", nargs="+", choices=["1", "2", "3", "6", "8", "12"], help="default: all")
    p.add_argument("--pooling", default="latent", choices=["latent", "leads"])
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_leads)


def cmd_leads(a):
    from .eval.leads import reduced_lead_eval

    reduced_lead_eval(_named_checkpoints(a.checkpoint, seeds=True), a.store, a.out, lead_sets=a.sets, pooling=a.pooling, device=a.device)
    print((Path(a.out) / "leads.md").read_text())


def _add_ablate(sub):
    p = sub.add_parser("ablate", help="is the cross-lead path used? reconstruction with the latents zeroed or shuffled")
    p.add_argument("store", help="store whose preprocessing matches the checkpoints")
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH",
                   help="repeat for each model, e.g. --checkpoint LAMAE=runs/lamae")
    p.add_argument("--hide", nargs="+", default=["III", "aVF", "V2", "V5"], metavar="LEAD",
                   help="leads withheld together (default III aVF V2 V5)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="folder for ablation.md and ablation.json")
    p.set_defaults(func=cmd_ablate)


def _named_checkpoints(specs, seeds: bool = False) -> dict:
    """NAME=PATH items -> {name: path}; with ``seeds``, {name: [paths]} (a name repeated gives its
    runs, reported over seeds); without, a repeated name is refused rather than one run silently
    replacing the other."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name, spec
        if not name.strip() or not path.strip():
            raise LamaeError(f"--checkpoint {spec!r}: give NAME=PATH with both a model name and a checkpoint path")
        out.setdefault(name, []).append(path)
    if seeds:
        return out
    repeated = [n for n, paths in out.items() if len(paths) > 1]
    if repeated:
        raise LamaeError(f"--checkpoint: the name {repeated[0]!r} is given {len(out[repeated[0]])} times; "
                         "give each checkpoint its own name (NAME=PATH)")
    return {name: paths[0] for name, paths in out.items()}


def cmd_ablate(a):
    from .eval.crosslead import run_ablation

    run_ablation(_named_checkpoints(a.checkpoint), a.store, a.out, hide=a.hide, split=a.split)
    print((Path(a.out) / "ablation.md").read_text())


def _add_models(sub):
    p = sub.add_parser("models", help="the model family: names for `pretrain --model` and `compare`")
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument("--settings", metavar="NAME",
                   help="the settings one member uses, by component (encoder, cross-lead path, aggregator, "
                        "objective, decoder), with their values at --size")
    p.set_defaults(func=cmd_models)


def cmd_models(a):
    from .models.family import FAMILY, count_parameters, model_config

    if a.settings:
        cfg = model_config(a.settings, a.size)
        print(f"{a.settings} ({a.size}, 100 Hz): the settings it uses, by component; override any with "
              "--set model.NAME=VALUE")
        for group, values in cfg.settings_in_use().items():
            print(f"  {group}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return
    print(f"{'name':<14}{'kind':<8}{'encoder':<10}{'aggregator':<11}{'params (' + a.size + ', 100 Hz)':>22}  what it is")
    for name, spec in FAMILY.items():
        cfg = model_config(name, a.size)
        print(f"{name:<14}{spec['kind']:<8}{cfg.encoder:<10}{cfg.aggregator:<11}{count_parameters(cfg):>22,}  "
              f"{spec['about']}")


def _add_demo(sub):
    p = sub.add_parser("demo", help="synth -> prepare -> pretrain (tiny) -> probe, on built-in data")
    p.add_argument("--out", default="lamae-demo", help="working folder (default ./lamae-demo)")
    p.add_argument("--records", type=int, help="synthetic ECGs (default 2000)")
    p.add_argument("--steps", type=int, help="pretraining steps (default 300: the whole demo in about 4 minutes on 2 cores)")
    p.add_argument("--full", action="store_true", help="the longer run: 1000 pretraining steps")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_demo)


def cmd_demo(a):
    from .demo import FULL, QUICK, run_demo

    base = FULL if a.full else QUICK  # an explicit --records/--steps wins (and is checked, 0 included)
    run_demo(a.out, records=base["records"] if a.records is None else a.records,
             steps=base["steps"] if a.steps is None else a.steps, workers=a.workers)


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="lamae", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lamae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_synth, _add_prepare, _add_verify, _add_pretrain, _add_probe, _add_embed, _add_finetune, _add_reconstruct,
                _add_explain, _add_leads, _add_ablate, _add_models, _add_compare, _add_benchmark, _add_demo):
        add(sub)
    return parser


# Commands whose --out names a file rather than a folder
FILE_OUTPUTS = {"embed"}
# the kind of folder each command writes (files.KINDS): it writes only into a new or empty folder
# or one holding its own earlier output
OUTPUT_KINDS = {"prepare": "store", "pretrain": "run", "probe": "probe", "finetune": "finetune",
                "compare": "compare", "benchmark": "benchmark", "leads": "leads", "ablate": "ablate",
                "reconstruct": "reconstruct", "explain": "explain", "demo": "demo", "synth": "synth"}


def check_output(command: str, out, *, overwrite: bool = False) -> None:
    """Fail before any work when the output location cannot be written (a read-only file
    system, a folder without permission, a file where a folder should be), lies in a store or
    checkpoint folder that the command would damage, or holds files that are not the command's
    own earlier output (``overwrite``: prepare's --overwrite, checked by prepare itself)."""
    from .files import check_claim, ensure_output_dir, ensure_output_file, refuse_lamae_folder

    if out is None:
        return
    if command in FILE_OUTPUTS:
        ensure_output_file(out)
        return
    if not str(out).strip():
        raise LamaeError(f"output folder {str(out)!r}: name a folder to write into")
    # prepare resumes the store it is making; nothing writes into another store or a checkpoint
    refuse_lamae_folder(out, allow="store" if command == "prepare" else None)
    if not overwrite:
        check_claim(out, OUTPUT_KINDS[command])
    ensure_output_dir(out)


def main(argv=None) -> int:
    """Run one command. Every failure ends in one line on stderr and a non-zero exit: named
    errors (bad input, unwritable output) with exit 2; anything else is a bug in lamae and says
    so (LAMAE_DEBUG=1 shows its traceback)."""
    import os

    from .files import write_error

    args = build_parser().parse_args(argv)
    try:
        # benchmark's --out default depends on the suite
        if args.command != "benchmark":
            check_output(args.command, getattr(args, "out", None), overwrite=getattr(args, "overwrite", False))
        args.func(args)
    except (LamaeError, FileNotFoundError, ValueError) as exc:
        print(f"lamae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # permission denied, read-only file system, disk full, ...
        import errno

        name = exc.filename or getattr(args, "out", None) or "."
        verb = "write" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "read or write"
        print(f"lamae {args.command}: error: {write_error(name, exc, verb)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lamae {args.command}: interrupted; run the same command again to resume where it stopped",
              file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("LAMAE_DEBUG"):
            raise
        print(f"lamae {args.command}: internal error: {type(exc).__name__}: {exc} (this is a bug in lamae; "
              "LAMAE_DEBUG=1 shows the traceback: please report it)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
