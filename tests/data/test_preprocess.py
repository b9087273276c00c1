import numpy as np
import pytest

from lamae.data.preprocess import Preprocessing, preprocess
from lamae.errors import RecordError, ShapeError


def _sine(fs, seconds, n_leads=3):
    t = np.arange(int(fs * seconds)) / fs
    return np.stack([np.sin(2 * np.pi * (1 + k) * t) for k in range(n_leads)])


@pytest.mark.parametrize("fs,seconds", [(500, 10), (360, 7), (257, 12.3), (1000, 38.4), (100, 3)])
def test_output_shape_and_finiteness_for_any_rate_and_length(fs, seconds):
    prep = Preprocessing(fs=100, window_s=10)
    y = preprocess(_sine(fs, seconds), fs, prep)
    assert y.shape == (3, 1000) and y.dtype == np.float32 and np.isfinite(y).all()


def test_zscore_per_lead_and_resampling_keeps_frequency():
    prep = Preprocessing(fs=100, window_s=10, bandpass=None)
    y = preprocess(_sine(500, 10) * 3 + 2, 500, prep)
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(1), 1, atol=1e-3)
    spectrum = np.abs(np.fft.rfft(y[1]))
    assert np.argmax(spectrum) == 20  # 2 Hz over 10 s


def test_isolated_nans_are_interpolated():
    x = _sine(500, 10)
    x[0, 1000:1010] = np.nan
    x[2, 7] = np.inf
    assert np.isfinite(preprocess(x, 500, Preprocessing())).all()


def test_mostly_invalid_lead_and_bad_shapes_raise():
    x = _sine(500, 10)
    x[1, :4000] = np.nan
    with pytest.raises(RecordError, match="rec9: lead II is 80% NaN"):
        preprocess(x, 500, Preprocessing(), leads=["I", "II", "III"], record_id="rec9")
    with pytest.raises(ShapeError):
        preprocess(np.zeros(100), 500, Preprocessing())


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="band-pass"):
        Preprocessing(fs=100, bandpass=(0.5, 60))
    assert Preprocessing.from_dict(Preprocessing().to_dict()) == Preprocessing()


def test_ecg_zscore_keeps_the_ratios_between_leads():
    prep = Preprocessing(fs=100, window_s=10, bandpass=None, normalize="ecg_zscore")
    x = _sine(500, 10, n_leads=2)
    x = np.stack([x[0] + 3.0, -2.0 * x[0] + 1.0, x[1] * 0.5, np.full(5000, 0.7)])  # last lead flat
    y = preprocess(x, 500, prep)
    np.testing.assert_allclose(y.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(y[1], -2.0 * y[0], atol=1e-4)       # lead 2 = -2 x lead 1, still
    np.testing.assert_allclose(y[2].std() / y[0].std(), 0.5, rtol=1e-3)
    assert (y[3] == 0).all()                                       # no signal: zeros, not in the scale
    np.testing.assert_allclose(np.sqrt(np.mean(y[:3] ** 2)), 1.0, rtol=1e-3)
    lead = preprocess(x, 500, Preprocessing(fs=100, window_s=10, bandpass=None))
    np.testing.assert_allclose(lead[1], -lead[0], atol=1e-4)       # per-lead z-scores erase the ratio


def test_windows_are_made_alike_whoever_asks():
    from lamae.data.preprocess import preprocess_windows

    prep = Preprocessing(fs=100, window_s=2)
    x = _sine(500, 7.3) + np.random.default_rng(0).normal(0, 0.1, (3, 3650))
    tiles = preprocess_windows(x, 500, prep, windows="tile")
    assert tiles.shape == (4, 3, 200)  # 0-2, 2-4, 4-6 s and the tail 5.3-7.3 s
    np.testing.assert_array_equal(tiles[0], preprocess(x, 500, prep))
    # a window is filtered on a margin of signal around it: the same as cutting a longer record
    np.testing.assert_allclose(tiles[1], preprocess(x[:, 500:2500], 500, prep, crop="center"), atol=0.02)
