import json
import re

import numpy as np
import pytest

from lamae.data.store import meta_digest
from lamae.errors import LamaeError
from lamae.config import first_difference
from lamae.eval.compare import CompareConfig, _as_current, run_compare
from lamae.eval.stats import paired_tests


def test_paired_tests():
    r = paired_tests([0.80, 0.82, 0.81, 0.83, 0.80], [0.78, 0.80, 0.80, 0.80, 0.79])
    assert r["n"] == 5 and r["mean_diff"] == pytest.approx(0.018)
    assert r["p_ttest"] < 0.05 and r["p_wilcoxon"] == pytest.approx(0.0625) and r["cohens_dz"] > 1
    same = paired_tests([0.8, 0.8], [0.8, 0.8])
    assert np.isnan(same["p_ttest"]) and np.isnan(same["p_wilcoxon"]) and same["mean_diff"] == 0


def test_compare_two_models_two_seeds_fills_every_table_and_resumes(store, tmp_path):
    cfg = CompareConfig(store=str(store.path), out=str(tmp_path / "cmp"), models=["LAMAE", "IndS"], seeds=[0, 1],
                        pretrain={"steps": 4, "batch_size": 16, "warmup_steps": 1, "base_lr": 0.01},
                        min_prevalence=0.02, min_count=2, min_test_positives=1)
    report = run_compare(cfg, progress=False)
    # (a) matched controls
    controls = {c["model"]: c for c in report["controls"]}
    assert set(controls) == {"LAMAE", "IndS"}
    for c in controls.values():
        assert c["matched"] and abs(c["parameter_ratio"] - 1) <= 0.10
        assert c["flops_per_step"] > 0 and c["wall_clock_s"] is not None
        assert c["mask_ratio"] == 0.75 and c["steps"] == 4 and c["batch"] == 16
    # a model's recommended recipe applies unless the comparison sets it for all (here it does not)
    assert controls["LAMAE"]["lead_dropout"] == 0.25 and controls["IndS"]["lead_dropout"] == 0.0
    # the joint-free, latent-free IndS is wider in its MLPs to match LAMAE's parameter count
    assert controls["IndS"]["mlp_ratio"] > controls["LAMAE"]["mlp_ratio"]
    # (b) hierarchy table: every level with a supported node has mean and std for both models
    for m in ("LAMAE", "IndS"):
        assert report["hierarchy"][m]["all"]["n"] == 2 and report["hierarchy"][m]["all"]["std"] is not None
    # (c) paired test against the (only) baseline, and against every model
    assert report["paired_test"]["baseline"] == "IndS" and report["paired_test"]["n"] == 2
    assert set(report["paired_tests"]) == {"IndS"}
    # (e) cross-lead reconstruction for both; the ablation only where there are latents
    assert set(report["crosslead"]) == {"LAMAE", "IndS"}
    assert set(report["crosslead"]["LAMAE"]) == {"none", "zero", "shuffle"}
    assert set(report["crosslead"]["IndS"]) == {"none"}
    assert report["crosslead"]["LAMAE"]["none"]["hidden_nmse"]["n"] == 2
    # (d) label efficiency at every fraction
    for m in ("LAMAE", "IndS"):
        assert set(report["label_efficiency"][m]) == {"0.01", "0.1", "1.0"}
        assert report["label_efficiency"][m]["1.0"]["mean"] is not None
    md = (tmp_path / "cmp" / "compare.md").read_text()
    for heading in ("(a) Matched controls", "(b) Macro AUROC per label level", "(c) Paired tests", "(d) Label efficiency",
                    "(e) Cross-lead reconstruction"):
        assert heading in md
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 5000
    # the tracker (csv by default) has every model's AUROC per seed and the means; each run its training
    metrics = (tmp_path / "cmp" / "metrics.csv").read_text()
    assert "0,LAMAE/macro_auroc," in metrics and "1,IndS/macro_auroc," in metrics and "LAMAE/macro_auroc_mean" in metrics
    assert "train/loss" in (tmp_path / "cmp" / "runs" / "IndS" / "seed-1" / "pretrain" / "metrics.csv").read_text()
    # a finished model/seed is not recomputed
    result = tmp_path / "cmp" / "runs" / "LAMAE" / "seed-0" / "result.json"
    stamp = result.stat().st_mtime_ns
    again = run_compare(cfg, progress=False)
    assert result.stat().st_mtime_ns == stamp
    assert json.loads(result.read_text())["per_level"] == again["results"]["LAMAE"][0]["per_level"]
    # a stored result made with other settings is not mixed in
    changed = CompareConfig(**{**cfg.__dict__, "pretrain": {**cfg.pretrain, "base_lr": 0.02}})
    with pytest.raises(LamaeError, match=r"result.json: computed with other settings .*base_lr was 0.01, now 0.02"):
        run_compare(changed, progress=False)
    # the store rebuilt with other content in the same folder: its old results are not reused
    import shutil

    moved = tmp_path / "store"
    shutil.copytree(store.path, moved)
    same = CompareConfig(**{**cfg.__dict__, "store": str(moved)})
    assert run_compare(same, progress=False)["results"]["LAMAE"][0]["per_level"] == again["results"]["LAMAE"][0]["per_level"]
    meta = json.loads((moved / "meta.json").read_text())
    meta["split_seed"] = 9
    meta["meta_sha256"] = meta_digest(meta)
    (moved / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(LamaeError, match=r"result.json: computed on other data than the store"):
        run_compare(same, progress=False)


def test_results_stored_before_a_setting_existed_are_reused_only_at_its_default():
    now = {"model": {"dim": 64, "lead_field": 0}, "train": {"steps": 800, "model": {"lead_field": 0}}, "store": "s"}
    stored = {"model": {"dim": 64}, "train": {"steps": 800, "model": {}, "tracker": "wandb"}, "store": "s"}
    assert _as_current(stored, now) == now  # lead_field came later, at its default; the tracker changes no result
    with_field = {**now, "model": {"dim": 64, "lead_field": 8}}
    assert _as_current(stored, with_field) != with_field
    assert first_difference(_as_current(stored, with_field), with_field) == "model.lead_field was 0, now 8"
    assert _as_current({**stored, "model": {"dim": 72}}, now) != now
    assert _as_current({**stored, "removed_setting": 1}, now) != now
    # a LAMAE result stored before the narrow routers ran full-width ones: not reused for today's
    narrow = {**now, "model": {"dim": 64, "lead_field": 0, "router_width": 0.25, "latent_mlp": False}}
    assert first_difference(_as_current(stored, narrow), narrow) == "model.latent_mlp was True, now False"
    ind = {**narrow, "model": {**narrow["model"], "encoder": "per_lead"}}
    assert _as_current({**stored, "model": {"dim": 64, "encoder": "per_lead"}}, ind) == ind  # no routers: reused


def test_compare_rejects_unknown_models_and_orphan_readouts(store, tmp_path):
    with pytest.raises(ValueError, match="unknown models"):
        run_compare(CompareConfig(store=str(store.path), out=str(tmp_path), models=["GPT"]), progress=False)
    for pair in ("CPC:GPT", "CPC-S4-MAE", "CPC:CPC"):
        with pytest.raises(ValueError, match="pairs"):
            CompareConfig(store=str(store.path), models=["LAMAE", "CPC", "S4-MAE"], pairs=[pair])
    with pytest.raises(ValueError, match="LAMAE_E reads LAMAE"):
        run_compare(CompareConfig(store=str(store.path), out=str(tmp_path), models=["LAMAE_E"]), progress=False)


def test_the_state_space_members_enter_every_table_cpc_all_but_the_reconstruction(store, tmp_path):
    cfg = CompareConfig(store=str(store.path), out=str(tmp_path / "cmp"), models=["LAMAE", "CPC", "S4-MAE"], seeds=[0],
                        pairs=["CPC:S4-MAE"],
                        pretrain={"steps": 3, "batch_size": 16, "warmup_steps": 1, "base_lr": 0.01},
                        min_prevalence=0.02, min_count=2, min_test_positives=1, label_fractions=[1.0])
    report = run_compare(cfg, progress=False)
    controls = {c["model"]: c for c in report["controls"]}
    # the same budget: parameters matched within 10%, the same steps, batch and recipe
    for name in ("CPC", "S4-MAE"):
        assert controls[name]["matched"] and abs(controls[name]["parameter_ratio"] - 1) <= 0.10, name
        assert report["hierarchy"][name]["all"]["n"] == 1 and name in report["paired_tests"]
    assert controls["CPC"]["flops_per_step"] > 0 and controls["CPC"]["steps"] == controls["LAMAE"]["steps"] == 3
    assert report["label_efficiency"]["CPC"]["1.0"]["mean"] is not None
    assert controls["CPC"]["mask_ratio"] is None  # CPC masks nothing; its lead dropout still shows
    row = next(line for line in (tmp_path / "cmp" / "compare.md").read_text().splitlines() if line.startswith("| CPC | "))
    assert re.search(r"\| yes \| \d+ / [\d.]+ \|", row) and "| 0.75" not in row  # matched: its width / MLP ratio
    # S4-MAE masks like LAMAE and rebuilds hidden leads, so it has a reconstruction row (no latents to ablate)
    assert controls["S4-MAE"]["mask_ratio"] == 0.75
    assert set(report["crosslead"]) == {"LAMAE", "S4-MAE"} and set(report["crosslead"]["S4-MAE"]) == {"none"}
    # a pair asked for: CPC against S4-MAE (same encoder, the objective changed), at each label fraction
    pair = report["pairs"]["CPC:S4-MAE"]["1.0"]
    score = {m: report["results"][m][0]["label_fractions"]["1.0"] for m in ("CPC", "S4-MAE")}
    assert pair["n"] == 1 and pair["mean_diff"] == pytest.approx(score["CPC"] - score["S4-MAE"])
    assert "| CPC - S4-MAE | 100% | 1 |" in (tmp_path / "cmp" / "compare.md").read_text()
