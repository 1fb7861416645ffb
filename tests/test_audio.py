"""Sound through image networks: ``audio/<image backbone>`` with waveforms and sound files, one
clip policy, bad input named by index, the three estimators, the cache and model files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import sktransfer
from sktransfer import FineTunedClassifier, FineTunedRegressor, PretrainedFeatureExtractor, feature_cache
from sktransfer.fitting.params import InvalidParameterError
from sktransfer.utils import check_backbone

from .conftest import TINY

soundfile = pytest.importorskip("soundfile")

AUDIO = "audio/" + TINY
SR = 8000


def tone(frequency, seconds, rng, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * frequency * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def tones(rng):
    """32 clips of 0.5 to 1.5 s: a tone (300 to 1,500 Hz), or noise, at a level from 0.05 to 0.5."""
    noisy = np.arange(32) % 2
    levels = rng.uniform(0.05, 0.5, 32)
    waves = []
    for is_noise, level in zip(noisy, levels):
        wave = tone(rng.uniform(300, 1500), rng.uniform(0.5, 1.5), rng)
        if is_noise:
            wave = rng.standard_normal(len(wave)).astype(np.float32) * 0.4
        waves.append((wave * level / 0.4).astype(np.float32))
    return waves, noisy, levels


def features(X, **params):
    return PretrainedFeatureExtractor(AUDIO, cache=False, **params).fit(X).transform(X)


def test_waveforms_sound_files_and_rates_give_the_same_features(tones, tmp_path):
    waves, _, _ = tones
    want = features(waves, sample_rate=SR)
    assert want.shape == (32, 16) and np.isfinite(want).all()
    paths = []
    for i, wave in enumerate(waves[:6]):
        paths.append(str(tmp_path / f"{i}.wav"))
        soundfile.write(paths[-1], wave, SR, subtype="FLOAT")  # lossless
    np.testing.assert_allclose(features(paths), want[:6], atol=1e-5)  # files carry their own rate
    flac = str(tmp_path / "0.flac")
    soundfile.write(flac, np.stack([waves[0], waves[0]], axis=1), SR)  # 16-bit stereo: channels averaged
    np.testing.assert_allclose(features([flac]), want[:1], atol=1e-2)
    same_length = np.stack([w[:4000] for w in waves[:4]])  # a 2-D array: one clip per row
    np.testing.assert_array_equal(features(same_length, sample_rate=SR),
                                  features([w[:4000] for w in waves[:4]], sample_rate=SR))
    from scipy.signal import resample_poly

    doubled = [resample_poly(w, 2, 1).astype(np.float32) for w in waves[:4]]  # the same sound at 16 kHz
    np.testing.assert_allclose(features(doubled, sample_rate=2 * SR), want[:4], atol=0.05)


def test_one_clip_policy_pad_short_keep_the_middle_of_long(rng):
    extractor = PretrainedFeatureExtractor(AUDIO, sample_rate=SR, clip_seconds=1.0, cache=False)
    long, short = tone(500, 3.0, rng), tone(500, 0.25, rng)
    extractor.fit([long])
    np.testing.assert_array_equal(extractor.transform([long]), extractor.transform([long[SR:2 * SR]]))
    padded = np.r_[short, np.zeros(SR - len(short), np.float32)]
    np.testing.assert_array_equal(extractor.transform([short]), extractor.transform([padded]))


@pytest.mark.parametrize("X, error, message", [
    ([np.array([0.1, np.nan], np.float32)], ValueError, r"X\[0\] holds NaN or infinite samples"),
    ([np.zeros(4, np.float32), np.array([np.inf], np.float32)], ValueError, r"X\[1\] holds NaN or infinite"),
    (np.zeros((2, 3, 4), np.float32), ValueError, r"X has shape \(2, 3, 4\): waveforms are a 2-D array"),
    ([np.zeros(8, np.float32), np.zeros(0, np.float32)], ValueError, r"X\[1\] is an empty clip"),
    ([np.zeros(8, np.int16)], ValueError, r"X\[0\] holds int16 samples: integer PCM needs a scale"),
    (np.zeros(800, np.float32), ValueError, r"X is one 1-D clip of 800 samples; pass a batch of clips"),
    ([np.zeros((2, 8), np.float32)], ValueError, r"X\[0\] has shape \(2, 8\); a clip is a 1-D array"),
])
def test_bad_waveforms_are_named_by_index(tones, X, error, message):
    waves, _, _ = tones
    extractor = PretrainedFeatureExtractor(AUDIO, sample_rate=SR).fit(waves[:2])
    with pytest.raises(error, match=message):
        extractor.transform(X)


def test_bad_sound_files_and_a_missing_rate_are_named(tones, tmp_path):
    waves, _, _ = tones
    with pytest.raises(ValueError, match=r"needs sample_rate= \(in Hz\) to read waveform arrays"):
        PretrainedFeatureExtractor(AUDIO).fit(waves)
    good = str(tmp_path / "good.wav")
    soundfile.write(good, waves[0], SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    (tmp_path / "folder.wav").mkdir()
    extractor = PretrainedFeatureExtractor(AUDIO).fit([good])
    with pytest.raises(FileNotFoundError, match=r"X\[1\]: sound file not found: .*nope\.wav"):
        extractor.transform([good, str(tmp_path / "nope.wav")])
    with pytest.raises(ValueError, match=r"X\[0\]: .*folder\.wav' is a directory, not a sound file"):
        extractor.transform([str(tmp_path / "folder.wav")])
    for cache in (True, False):
        with pytest.raises(ValueError, match=r"X\[1\]: cannot read sound file .*broken\.wav"):
            extractor.set_params(cache=cache).transform([good, str(tmp_path / "broken.wav")])


def test_parameters_of_other_modalities_are_refused_before_anything_is_read():
    with pytest.raises(InvalidParameterError, match="'value_range' parameter .* must be .* with an audio backbone"):
        PretrainedFeatureExtractor(AUDIO, value_range=(0, 255)).fit([np.zeros(8, np.float32)])
    with pytest.raises(InvalidParameterError, match="'clip_seconds' parameter .* must be None with an image"):
        PretrainedFeatureExtractor(TINY, clip_seconds=1.0).fit(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(InvalidParameterError, match="'sample_rate' parameter .* must be None with a text"):
        PretrainedFeatureExtractor("sentence-transformers/all-MiniLM-L6-v2", sample_rate=SR).fit(["a"])


def test_the_three_estimators_learn_sounds(tones):
    waves, noisy, levels = tones
    params = {"sample_rate": SR, "random_state": 0}
    probe = FineTunedClassifier(AUDIO, freeze_depth="all", **params).fit(waves, noisy)
    assert probe.score(waves, noisy) > 0.9
    tuned = FineTunedClassifier(AUDIO, head_init="probe", max_epochs=3, lr=1e-3, batch_size=8, **params).fit(waves, noisy)
    assert tuned.score(waves, noisy) > 0.9
    noise = [w for w, n in zip(waves, noisy) if n]
    target = np.log(levels[noisy == 1])  # the level of the noise clips
    loudness = FineTunedRegressor(AUDIO, freeze_depth="all", probe_C=100.0, **params).fit(noise, target)
    assert loudness.score(noise, target) > 0.9


def test_cache_pipeline_search_and_model_files(tones, tmp_path, empty_cache):
    waves, high, _ = tones  # high: the noisy clips
    extractor = PretrainedFeatureExtractor(AUDIO, sample_rate=SR)
    first = extractor.fit_transform(waves)
    np.testing.assert_array_equal(extractor.transform(waves), first)
    assert feature_cache.stats()["hits"] == 32
    search = GridSearchCV(Pipeline([("feat", extractor), ("clf", LogisticRegression(max_iter=500))]),
                          {"clf__C": [0.1, 10.0]}, cv=2).fit(waves, high)
    assert search.best_score_ > 0.8
    loaded = sktransfer.load(sktransfer.save(extractor, tmp_path / "ext.safetensors"))
    np.testing.assert_array_equal(loaded.transform(waves), first)
    clf = FineTunedClassifier(AUDIO, freeze_depth="all", sample_rate=SR).fit(waves, high)
    expected = clf.predict_proba(waves)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(waves), expected)
    np.testing.assert_array_equal(
        sktransfer.load(sktransfer.save(clf, tmp_path / "clf.safetensors")).predict_proba(waves), expected)
    sio = pytest.importorskip("skops.io")
    sio.dump(clf, tmp_path / "clf.skops")
    np.testing.assert_array_equal(
        sio.load(tmp_path / "clf.skops", trusted=sktransfer.SKOPS_TRUSTED_TYPES).predict_proba(waves), expected)


def test_the_contract_kit_covers_audio_backbones():
    backbone = check_backbone("audio/resnet18", weights=None)
    assert backbone.modality == "audio" and backbone.data_config.sample_rate == 16000
    assert check_backbone(AUDIO).stage_names == ["stem", "block1", "block2"]
    with pytest.raises(ValueError, match="an audio backbone is built on an image backbone"):
        sktransfer.get_backbone("audio/sentence-transformers/all-MiniLM-L6-v2")


def test_the_command_line_fits_on_a_folder_of_sound_files(tones, tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    waves, noisy, _ = tones
    for i, (wave, label) in enumerate(zip(waves, noisy)):
        folder = tmp_path / "sounds" / ("noise" if label else "tone")
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{i:02d}.wav", wave, SR)
    script = str(Path(sys.executable).with_name("sktransfer"))
    model = tmp_path / "model.safetensors"
    fit = subprocess.run([script, "fit", str(tmp_path / "sounds"), "-b", "audio/resnet18", "--weights", "none",
                          "--input-size", "32", "--epochs", "1", "--val", "0.25", "-o", str(model), "-q"],
                         capture_output=True, text=True, timeout=600)
    assert fit.returncode == 0, fit.stderr
    assert "on 8 images" in fit.stdout or "on 8 " in fit.stdout
    predict = subprocess.run([script, "predict", str(model), str(tmp_path / "sounds" / "tone"), "-q"],
                             capture_output=True, text=True, timeout=600)
    assert predict.returncode == 0, predict.stderr
    rows = list(csv.DictReader(predict.stdout.splitlines()))
    assert len(rows) == 16 and rows[0]["path"].endswith(".wav") and set(rows[0]) >= {"proba_noise", "proba_tone"}


def test_the_rate_of_waveforms_is_read_when_predicting_and_short_clips_are_named(tones, tmp_path):
    waves, noisy, _ = tones
    paths = []
    for i, wave in enumerate(waves[:4]):
        paths.append(str(tmp_path / f"{i}.wav"))
        soundfile.write(paths[-1], wave, SR, subtype="FLOAT")
    extractor = PretrainedFeatureExtractor(AUDIO, cache=False).fit(paths)  # files carry their rate
    with pytest.raises(ValueError, match="needs sample_rate="):
        extractor.transform(waves[:4])
    np.testing.assert_allclose(extractor.set_params(sample_rate=SR).transform(waves[:4]), extractor.transform(paths),
                               atol=1e-5)
    with pytest.raises(ValueError, match=r"clip_seconds=0.01 makes 160 samples at 16000 Hz; a spectrogram needs at "
                                         r"least 257 \(clip_seconds >= 0.0161\)"):
        PretrainedFeatureExtractor(AUDIO, sample_rate=SR, clip_seconds=0.01).fit(waves[:2])
