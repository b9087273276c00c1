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
