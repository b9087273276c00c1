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
