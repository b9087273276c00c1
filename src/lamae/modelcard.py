"""A model card (``MODEL_CARD.md``) beside every checkpoint.

Written when the checkpoint is saved (data, configuration, preprocessing, training figures)
and rewritten when an evaluation of that checkpoint is recorded (``evaluations.json``), so
whoever receives the folder knows what the model was trained on and how it scored.
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import atomic_write_text

CARD = "MODEL_CARD.md"
EVALUATIONS = "evaluations.json"


def render_model_card(config: dict, evaluations: list[dict] | None = None) -> str:
    m, p = config.get("model", {}), config.get("preprocessing", {})
    train, store, training = config.get("train", {}), config.get("store", {}), config.get("training", {})
    band = p.get("bandpass")
    lines = [
        "# LAMAE model card", "",
        "A latent attention masked autoencoder for multi-lead ECG, trained with `lamae` "
        f"{config.get('lamae_version', '?')}. Load it with `lamae.load(\"<this folder>\")`; "
        "the preprocessing below is applied for you.", "",
        "## Preprocessing (the model only works on data prepared this way)", "",
        f"- sampling rate: {p.get('fs')} Hz (inputs at other rates are resampled)",
        f"- window: {p.get('window_s')} s ({int(round(p.get('fs', 0) * p.get('window_s', 0)))} samples per lead)",
        f"- band-pass: {'%g-%g Hz, zero-phase Butterworth order 2' % tuple(band) if band else 'none'}",
        f"- normalisation: {p.get('normalize')}",
        f"- leads whose samples are more than {p.get('max_invalid_fraction')} NaN/inf are treated as absent", "",
        "## Data", "",
        f"- store: `{store.get('path', '?')}` ({store.get('n_rows', '?')} records)",
    ]
    if store.get("format"):
        lines.append(f"- source: {store.get('format')} at `{store.get('source', '?')}`")
    if train:
        lines.append(f"- training records: split `{train.get('split')}`"
                     + (f", folds {train.get('folds')}" if train.get("folds") is not None else ""))
    lines += ["", "## Configuration", "",
              f"- size: {train.get('size', '?')}; width {m.get('dim')}, depth {m.get('depth')}, "
              f"{m.get('heads')} heads, patch {m.get('patch_size')} samples",
              f"- family member: {train.get('architecture', '?')}; " + _cross_lead(m),
              f"- masking: {m.get('mask_ratio')} of each lead's patches"
              + ("; limb leads masked together" if m.get("mask_limb_together") else "")
              + (f"; lead dropout {train.get('lead_dropout')}" if train.get("lead_dropout") else "")
              + (f"; limb-group dropout {train.get('limb_dropout')}" if train.get("limb_dropout") else ""),
              f"- decoder: width {m.get('decoder_dim')}, depth {m.get('decoder_depth')}"
              + (f"; trained on {m['decode_ratio']:g} of each lead's masked patches (partial decoding; "
                 "evaluation decodes every patch)" if m.get("decode_ratio", 1) < 1 else "")]
    if train:
        lines.append(f"- optimisation: {train.get('steps')} steps, batch {train.get('batch_size')}, base lr "
                     f"{train.get('base_lr')}, weight decay {train.get('weight_decay')}, warmup "
                     f"{train.get('warmup_steps')}, seed {train.get('seed')}")
    lines += ["", "## Training", "", f"- step of this checkpoint: {config.get('step', '?')}"]
    if training:
        lines += [f"- masked-patch MSE: {training.get('first_loss', float('nan')):.4f} at the first step of this session, "
                  f"{training.get('last_loss', float('nan')):.4f} at this checkpoint",
                  f"- throughput: {training.get('ecgs_per_s', float('nan')):.1f} ECGs/s on "
                  f"{training.get('device', '?')} x {training.get('world', 1)}; "
                  f"{training.get('seconds', float('nan')):.0f} s of training in this session",
                  "- loss curve: `loss.csv` / `loss.png` in the run folder"]
    lines += ["", "## Evaluation", ""]
    if evaluations:
        for e in evaluations:
            lines.append(f"### {e.get('name', 'evaluation')}")
            lines.append("")
            lines += [f"- {k}: {v}" for k, v in e.get("summary", {}).items()]
            if e.get("report"):
                lines.append(f"- full report: `{e['report']}`")
            lines.append("")
    else:
        lines += ["None recorded yet: `lamae probe`, `lamae finetune` and `lamae benchmark` add their "
                  "results here.", ""]
    lines += ["## Limits", "",
              "- Numbers above are what this checkpoint measured, on the data named above; they say "
              "nothing about other populations or devices.",
              "- Not a medical device; not for clinical decisions."]
    return "\n".join(lines) + "\n"


def _cross_lead(m: dict) -> str:
    """How this model's leads exchange information, in words."""
    enc, agg = m.get("encoder", "per_lead"), m.get("aggregator")
    if enc == "router":
        every = m.get("router_every")
        where = "after every encoder block" if every == 1 else \
            f"after every {every} encoder blocks" if every else "once, after the encoder"
        width = m.get("router_width", 1.0)
        return (f"router encoder: {m.get('router_latents')} latents per patch position gather from the leads "
                f"{where}, through attention {width:g} of the model's width"
                + (", with an MLP on the latents" if m.get("latent_mlp", True) else "")
                + f"; the decoder reads them; embedding = `{m.get('readout')}` readout"
                + (f"; a lead field of {m['lead_field']} linear sources per position feeds the latents and "
                   "starts the decoder's estimate" if m.get("lead_field") else ""))
    if enc == "joint":
        return "joint encoder: one sequence over all leads' tokens"
    if enc == "s4" and m.get("objective") == "mae":
        return ("S4-MAE: all leads enter one strided convolution as channels (absent and masked samples "
                "zero-filled, with a presence channel each), then bidirectional S4D layers; trained to rebuild "
                f"{m.get('mask_ratio')} of each lead's patches through an S4D decoder; embedding = the encoder's "
                "mean over time")
    if enc == "s4":
        return (f"CPC: all leads enter one strided convolution as channels (absent ones zero-filled, with a "
                f"presence channel each), then causal S4D layers; trained by contrastive predictive coding over "
                f"{m.get('cpc_steps')} future frames; embedding = the context's mean over time")
    if agg == "latent":
        return (f"{enc} encoder + {m.get('n_latents')} global latents over the leads ({m.get('latent_mode')}, "
                f"input {m.get('latent_input')}), prepended in the decoder")
    return f"{enc} encoder, aggregator {agg}"


def write_model_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    ev_path = folder / EVALUATIONS
    evaluations = json.loads(ev_path.read_text()) if ev_path.exists() else []
    atomic_write_text(folder / CARD, render_model_card(config, evaluations))
    return folder / CARD


def record_evaluation(folder: str | Path, name: str, summary: dict, report: str | None = None) -> None:
    """Add (or replace, by name) an evaluation of the checkpoint in ``folder`` and rewrite its card."""
    folder = Path(folder)
    ev_path = folder / EVALUATIONS
    evaluations = json.loads(ev_path.read_text()) if ev_path.exists() else []
    evaluations = [e for e in evaluations if e.get("name") != name]
    evaluations.append({"name": name, "summary": summary, "report": report})
    atomic_write_text(ev_path, json.dumps(evaluations, indent=2))
    write_model_card(folder)
