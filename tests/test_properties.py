"""Property-based tests (hypothesis): header parsing, preprocessing, label building."""

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lamae.data.preprocess import Preprocessing, preprocess
from lamae.data.wfdb_io import read_wfdb, write_wfdb
from lamae.errors import LabelError, LeadNameError, RecordError
from lamae.labels.icd10 import ancestors, build_flat_targets, build_targets, parse_code_list
from lamae.leads import STANDARD_LEADS

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

lead_subsets = st.lists(st.sampled_from(STANDARD_LEADS), min_size=1, max_size=12, unique=True)


@SETTINGS
@given(leads=lead_subsets, fs=st.sampled_from([100, 128, 250, 257, 360, 400, 500, 1000]),
       seconds=st.floats(1.0, 4.0), gain=st.sampled_from([100.0, 200.0, 1000.0]), seed=st.integers(0, 2**16))
def test_written_records_read_back(tmp_path_factory, leads, fs, seconds, gain, seed):
    """Header and samples survive a write/read round trip for any leads, rate, length, gain."""
    n = int(fs * seconds)
    x = np.random.default_rng(seed).normal(0, 1.0, (len(leads), n)).astype(np.float32)
    d = tmp_path_factory.mktemp("rt")
    write_wfdb("rec", d, x, leads, fs, gain=gain)
    rec = read_wfdb(d / "rec")
    assert rec.leads == tuple(leads) and rec.fs == fs and rec.signal.shape == (len(leads), n)
    np.testing.assert_allclose(rec.signal, np.round(x.astype(np.float64) * gain) / gain, atol=1e-6)


header_junk = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), max_size=200)


@SETTINGS
@given(text=header_junk)
def test_any_header_text_gives_a_record_error_or_a_record(tmp_path_factory, text):
    """Whatever a .hea file holds, reading it raises a named lamae error or returns a record."""
    d = tmp_path_factory.mktemp("junk")
    (d / "r.hea").write_text(text)
    (d / "r.dat").write_bytes(b"\0" * 64)
    try:
        rec = read_wfdb(d / "r")
    except (RecordError, LeadNameError) as exc:
        assert str(d / "r") in str(exc)  # the message names the file
    else:
        assert rec.signal.ndim == 2


signals = arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(40, 1200)),
                 elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False))


@SETTINGS
@given(x=signals, fs=st.sampled_from([100.0, 250.0, 500.0]),
       bandpass=st.sampled_from([None, (0.5, 40.0)]), crop=st.sampled_from(["start", "center"]))
def test_preprocess_shape_and_finiteness(x, fs, bandpass, crop):
    prep = Preprocessing(fs=100.0, window_s=2.0, bandpass=bandpass)
    y = preprocess(x, fs, prep, crop=crop)
    assert y.shape == (x.shape[0], prep.n_samples) and y.dtype == np.float32
    assert np.isfinite(y).all()
    # z-scored leads: mean 0, unit variance over the part that is signal (or all zeros if flat)
    n_valid = min(prep.n_samples, int(np.ceil(x.shape[1] * prep.fs / fs)))
    for row in y[:, : n_valid]:
        assert abs(row.mean()) < 1e-3 or np.allclose(row, 0)


@SETTINGS
@given(x=signals)
def test_preprocess_is_idempotent_without_filtering(x):
    """At the target rate and with no band-pass, z-scoring twice changes nothing."""
    prep = Preprocessing(fs=100.0, window_s=2.0, bandpass=None)
    assume(x.shape[1] >= prep.n_samples)
    once = preprocess(x, 100.0, prep)
    twice = preprocess(once, 100.0, prep)
    np.testing.assert_allclose(twice, once, atol=1e-4)


@SETTINGS
@given(x=signals, holes=st.lists(st.integers(0, 1199), max_size=20))
def test_preprocess_fills_isolated_invalid_samples(x, holes):
    x = x.copy()
    holes = [h for h in holes if h < x.shape[1]]
    x[0, holes] = np.nan
    assume(np.isfinite(x[0]).sum() >= 2 and np.isnan(x[0]).mean() <= 0.5)
    assert np.isfinite(preprocess(x, 100.0, Preprocessing(fs=100.0, window_s=2.0))).all()


icd_codes = st.sampled_from(["I4891", "I447", "I4510", "I517", "I2109", "E785", "I10", "N179", "R001", "Z950"])


@SETTINGS
@given(lists=st.lists(st.lists(icd_codes, max_size=5), min_size=1, max_size=40))
def test_icd_targets_include_every_ancestor(lists):
    t = build_targets(lists, min_prevalence=0.0, min_count=1)
    col = {n: j for j, n in enumerate(t.nodes)}
    assert t.y.shape == (len(lists), len(t.nodes))
    for i, codes in enumerate(lists):
        positive = {n for n in t.nodes if t.y[i, col[n]]}
        expected = {node for c in codes for _, node in ancestors(c)} & set(t.nodes)
        assert positive == expected
    # a parent is positive wherever a child is
    for n in t.nodes:
        for _, a in ancestors(n):
            if a in col and a != n:
                assert (t.y[:, col[a]] >= t.y[:, col[n]]).all()


@SETTINGS
@given(lists=st.lists(st.lists(st.sampled_from(list("ABCDEF")), max_size=4), min_size=1, max_size=50),
       min_count=st.integers(1, 5))
def test_flat_targets_respect_min_count(lists, min_count):
    t = build_flat_targets(lists, min_prevalence=0.0, min_count=min_count)
    assert all(t.y[:, j].sum() >= min_count for j in range(len(t.nodes)))
    for i, labels in enumerate(lists):
        assert {n for j, n in enumerate(t.nodes) if t.y[i, j]} == set(labels) & set(t.nodes)


@SETTINGS
@given(codes=st.lists(st.from_regex(r"[A-Z][0-9]{2}[0-9A-Z]{0,4}", fullmatch=True), max_size=6))
def test_code_lists_round_trip_literally(codes):
    assert parse_code_list(repr(codes)) == [c.replace(".", "") for c in codes]


@SETTINGS
@given(text=st.text(max_size=60))
def test_label_parsing_never_evaluates(text):
    try:
        out = parse_code_list(text)
    except LabelError:
        return
    assert isinstance(out, list) and all(isinstance(c, str) for c in out)
