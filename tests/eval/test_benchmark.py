import json

from lamae.eval.benchmark import BenchmarkConfig, run_ptbxl_benchmark
from tests.conftest import shared


def test_ptbxl_benchmark_three_modes_with_cis(tmp_path):
    data = shared("ptb-xl-500")
    cfg = BenchmarkConfig(data=str(data), out=str(tmp_path / "b"), tasks=["superdiagnostic"], n_boot=50,
                          pretrain={"steps": 2, "batch_size": 16, "warmup_steps": 1},
                          finetune={"steps": 2, "batch_size": 16, "warmup_steps": 1})
    report = run_ptbxl_benchmark(cfg, progress=False)
    res = {r["mode"]: r for r in report["results"]}
    assert set(res) == {"lp", "frozen", "ft"}
    for r in res.values():
        assert r["n_labels"] == 5 and r["n_test"] > 50 and r["n_train"] > 300
        assert 0 <= r["lo"] <= r["auroc"] <= r["hi"] <= 1
    md = (tmp_path / "b" / "benchmark.md").read_text()
    assert "| superdiagnostic | 5 (5) |" in md and "0.935" in md  # published FT beside ours
    # finished (task, mode) results are reused
    stamp = (tmp_path / "b" / "results" / "superdiagnostic-ft.json").stat().st_mtime_ns
    again = run_ptbxl_benchmark(cfg, progress=False)
    assert (tmp_path / "b" / "results" / "superdiagnostic-ft.json").stat().st_mtime_ns == stamp
    assert json.dumps(again["results"]) == json.dumps(report["results"])


def test_mimic_icd_benchmark_on_synthetic_mimic(tmp_path):
    import pandas as pd

    from lamae.data.synth import synthesize_mimic
    from lamae.eval.benchmark import MimicBenchmarkConfig, run_mimic_benchmark

    data = synthesize_mimic(tmp_path / "mimic", 240, seed=7, progress=False)
    cfg = MimicBenchmarkConfig(data=str(data), out=str(tmp_path / "m"), scenario="mimic_all_all_all_all_5_3A",
                               n_boot=30, pretrain={"steps": 3, "batch_size": 16, "warmup_steps": 1})
    report = run_mimic_benchmark(cfg, progress=False)
    (r,) = report["results"]
    labels = pd.read_csv(data / "records_w_diag_icd10.csv")
    assert r["n_test"] == sum((labels["fold"] == 19) & (labels["all_diag_all"] != "[]"))
    assert r["n_cardiac"] >= 3 and r["n_noncardiac"] >= 1  # I44, I48, I51, ... and E78, R00, ...
    assert "cardiac macro [95% CI]" in (tmp_path / "m" / "benchmark.md").read_text()
    assert r["cardiac_ci"]["lo"] <= r["cardiac_ci"]["auroc"] <= r["cardiac_ci"]["hi"]
    # pretraining saw only folds 0-17
    cfg_used = pd.read_json(tmp_path / "m" / "pretrain" / "pretrain_config.json", typ="series")
    assert list(cfg_used["folds"]) == list(range(18))
