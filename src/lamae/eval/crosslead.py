"""Is the cross-lead path used? Ablate the latents at evaluation and watch reconstruction.

Two reconstruction tasks on a store's held-out split, each under three conditions: the model
as trained, its latents set to zero, and its latents shuffled across the batch (every ECG
receives another ECG's latents):

- hidden leads: some leads withheld, rebuilt from the others. Only the cross-lead path can
  carry this, so ablating the latents should push the error to that of predicting zeros or
  beyond.
- same lead: patches masked at the same times in every lead, rebuilt from each lead's own
  visible patches. At those times no other lead is visible, so the error should barely move.

A model whose latents carry nothing shows the same error under all three conditions.
"""

from __future__ import annotations

import json

from ..data.store import EcgStore
from ..files import atomic_write_text, output_dir
from ..errors import LamaeError
from .reconstruction import masked_span_errors, reconstruction_errors

CONDITIONS = (None, "zero", "shuffle")
DEFAULT_HIDE = ("III", "aVF", "V2", "V5")


def has_latents(net) -> bool:
    return net.cfg.aggregator != "none" and net.cfg.objective == "mae"


def crosslead_ablation(model, store: EcgStore, hide=DEFAULT_HIDE, *, split: str | None = "test",
                       batch_size: int = 64) -> dict:
    """``model``: a :class:`lamae.api.Pretrained`. Returns per condition the hidden-lead errors
    (per lead, and the mean nMSE) and the same-lead masked-span errors."""
    if not has_latents(model.model):
        raise LamaeError(f"{model.config.get('path', 'this model')}: has no latents to ablate "
                         f"(encoder {model.model.cfg.encoder}, aggregator none)")
    out = {"hide": list(hide), "split": split, "conditions": {}}
    for cond in CONDITIONS:
        hidden = reconstruction_errors(model, store, list(hide), split=split, batch_size=batch_size, intervene=cond)
        same = masked_span_errors(model, store, split=split, batch_size=batch_size, intervene=cond)
        nmses = [v["nmse"] for v in hidden.values() if v["n"]]
        out["conditions"][cond or "none"] = {"hidden": hidden, "hidden_nmse": sum(nmses) / max(1, len(nmses)),
                                             "same_lead": same}
    base = out["conditions"]["none"]
    for cond in ("zero", "shuffle"):
        c = out["conditions"][cond]
        c["hidden_change"] = c["hidden_nmse"] - base["hidden_nmse"]
        c["same_lead_change"] = c["same_lead"]["nmse"] - base["same_lead"]["nmse"]
    return out


def ablation_markdown(results: dict[str, dict], title: str = "Cross-lead ablation") -> str:
    """``results``: model name -> :func:`crosslead_ablation` output."""
    first = next(iter(results.values()))
    lines = [f"# {title}", "",
             f"Hidden leads {', '.join(first['hide'])} withheld together and rebuilt from the others; "
             "same lead: patches masked at the same times in every lead (75%), rebuilt from each lead's "
             f"own visible patches. Split `{first['split']}`. nMSE = MSE / MSE of predicting zeros "
             "(1.0 = no better than zeros); r = correlation with the original.", "",
             "| model | latents | hidden nMSE | " + " | ".join(f"{h} nMSE / r" for h in first["hide"])
             + " | same-lead nMSE |",
             "|---|---|---|" + "---|" * len(first["hide"]) + "---|"]
    for name, res in results.items():
        for cond, c in res["conditions"].items():
            cells = [f"{c['hidden'][h]['nmse']:.3f} / {c['hidden'][h]['corr']:.2f}" for h in res["hide"]]
            lines.append(f"| {name} | {cond} | {c['hidden_nmse']:.3f} | " + " | ".join(cells)
                         + f" | {c['same_lead']['nmse']:.3f} |")
    lines += ["", "Change against the intact model (nMSE):", "",
              "| model | latents | hidden leads | same lead |", "|---|---|---|---|"]
    for name, res in results.items():
        for cond in ("zero", "shuffle"):
            c = res["conditions"][cond]
            lines.append(f"| {name} | {cond} | {c['hidden_change']:+.3f} | {c['same_lead_change']:+.3f} |")
    return "\n".join(lines) + "\n"


def run_ablation(checkpoints: dict[str, str], store_path, out_dir, *, hide=DEFAULT_HIDE,
                 split: str | None = "test") -> dict:
    """:func:`crosslead_ablation` for each named checkpoint on ``store_path``, written to
    ``ablation.md`` / ``ablation.json`` in ``out_dir``."""
    from ..api import load

    store = EcgStore(store_path)
    results = {name: crosslead_ablation(load(path), store, hide, split=split) for name, path in checkpoints.items()}
    out = output_dir(out_dir, "ablate", writes=("ablation.json", "ablation.md"))
    atomic_write_text(out / "ablation.json", json.dumps({"store": str(store.path), "checkpoints": checkpoints,
                                                        "results": results}, indent=2))
    atomic_write_text(out / "ablation.md", ablation_markdown(results))
    return results
