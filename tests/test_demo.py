import numpy as np

from lamae.data.synth import CONDITION_CODES, NO_SIGNATURE_CODES
from lamae.demo import signature_summary
from lamae.eval.metrics import auroc


def _row(table: str, title: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {title}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_signature_summary_reports_the_paired_difference_with_its_standard_error(tmp_path):
    signature = sorted(set(CONDITION_CODES.values()))
    nodes = signature + list(NO_SIGNATURE_CODES)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (300, len(nodes)))
    noise = rng.normal(size=(2, *y.shape))
    p = np.stack([noise[0] + 2.0 * y * np.isin(nodes, signature), noise[1]])  # pretrained sees the signatures
    np.savez(tmp_path / "scores.npz", nodes=np.array(nodes), y_test=y, names=np.array(["LAMAE", "random init"]),
             p_test=p)
    report = {"macro": {"LAMAE": {}, "random init": {}},
              "nodes": [{"node": n, "in_macro": True, "LAMAE": auroc(y[:, j], p[0, :, j]),
                         "random init": auroc(y[:, j], p[1, :, j])} for j, n in enumerate(nodes)]}
    table = signature_summary(report, tmp_path / "scores.npz")
    _, n_codes, pre, rand, diff = _row(table, "with an ECG signature")
    d, se = (float(v) for v in diff.split(" ± "))
    assert int(n_codes) == len(signature)
    assert abs(d - (float(pre) - float(rand))) < 2e-4  # the difference of the two columns
    assert d > 3 * se > 0
    _, _, pre, rand, diff = _row(table, "without one (chance expected)")
    d, se = (float(v) for v in diff.split(" ± "))
    assert abs(d) < 3 * se  # neither representation carries these codes
    # without the scores file the table still has the two AUROC columns, and no difference
    assert "difference" not in signature_summary(report)
