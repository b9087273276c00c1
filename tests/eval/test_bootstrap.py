import numpy as np
from sklearn.metrics import roc_auc_score

from lamae.eval.bootstrap import macro_auroc_ci
from lamae.eval.metrics import auroc


def test_rank_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
    assert abs(auroc(y, p) - roc_auc_score(y, p)) < 1e-12
    assert np.isnan(auroc(np.ones(5), np.arange(5)))


def test_ci_contains_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)

    def sample(n):
        y = rng.integers(0, 2, (n, 3))
        return y, y + rng.normal(scale=1.5, size=y.shape)

    small = macro_auroc_ci(*sample(80), n_boot=300)
    large = macro_auroc_ci(*sample(3000), n_boot=300)
    for ci in (small, large):
        assert ci["lo"] <= ci["auroc"] <= ci["hi"]
    assert (large["hi"] - large["lo"]) < 0.5 * (small["hi"] - small["lo"])


def test_paired_difference_sign_and_standard_error():
    from lamae.eval.bootstrap import paired_macro_difference

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (400, 3))
    good = y + rng.normal(scale=0.7, size=y.shape)
    poor = y + rng.normal(scale=3.0, size=y.shape)
    d = paired_macro_difference(y, good, poor, n_boot=300)
    assert d["difference"] > 3 * d["se"] > 0  # a clear gap, measured against its own SE
    same = paired_macro_difference(y, good, good, n_boot=50)
    assert same["difference"] == 0 and same["se"] == 0  # paired: identical scores never differ
    one_col = paired_macro_difference(y, good, poor, [1], n_boot=50)
    assert abs(one_col["difference"] - (auroc(y[:, 1], good[:, 1]) - auroc(y[:, 1], poor[:, 1]))) < 1e-12


def test_one_auroc_and_one_scorable_rule():
    from lamae.eval.metrics import macro_auroc, node_aurocs, scorable

    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    p = np.array([[0.9, 0.1, 0.2], [0.2, 0.3, 0.4], [0.6, 0.5, 0.1], [0.7, 0.2, 0.3]])
    assert [scorable(y[:, j]) for j in range(3)] == [True, False, False]
    a = node_aurocs(y, p)
    assert a[0] == roc_auc_score(y[:, 0], p[:, 0]) and np.isnan(a[1:]).all()
    assert macro_auroc(y, p) == a[0] and np.isnan(macro_auroc(y, p, [1, 2]))
