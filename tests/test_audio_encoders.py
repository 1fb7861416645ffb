"""Hugging Face audio encoders (wav2vec2, HuBERT, AST) from local folders and the offline hub
cache: the model's own features, the contract kit, fine-tuning, model files. Tiny random
configurations stand in for the published models (no download here)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import sktransfer
from sktransfer import FineTunedClassifier, FineTunedRegressor, PretrainedFeatureExtractor
from sktransfer.backbones import AudioEncoderConfig, WeightsUnavailableError
from sktransfer.backbones._catalog import describe_backbone
from sktransfer.backbones._registry import backbone_modality
from sktransfer.utils import check_backbone

transformers = pytest.importorskip("transformers")

SR = 16000
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
CONV = {"conv_dim": (16, 16), "conv_stride": (5, 4), "conv_kernel": (10, 8), "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2}


def _save(model, extractor, folder):
    torch.manual_seed(0)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Tiny random wav2vec2, HuBERT and AST model folders, as ``save_pretrained`` writes them."""
    root = tmp_path_factory.mktemp("encoders")
    torch.manual_seed(0)
    return {
        "wav2vec2": _save(transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY, **CONV)),
                          transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR), root / "wav2vec2"),
        "hubert": _save(transformers.HubertModel(transformers.HubertConfig(**TINY, **CONV)),
                        transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR), root / "hubert"),
        "ast": _save(transformers.ASTModel(transformers.ASTConfig(**TINY, max_length=100, num_mel_bins=16,
                                                                  frequency_stride=10, time_stride=10)),
                     transformers.ASTFeatureExtractor(num_mel_bins=16, max_length=100), root / "ast"),
    }


@pytest.fixture
def sounds(rng):
    """24 one-second clips at 16 kHz: a tone (200 to 2,000 Hz) or noise, alternately."""
    t = np.arange(SR) / SR
    noisy = np.arange(24) % 2
    clips = [(0.3 * rng.standard_normal(SR) if n else 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t))
             for n in noisy]
    return [c.astype(np.float32) for c in clips], noisy


@pytest.mark.parametrize("kind, prefix", [("wav2vec2", 0), ("hubert", 0), ("ast", 2)])
def test_features_are_the_models_own(folders, sounds, kind, prefix):
    clips, _ = sounds
    folder = folders[kind]
    got = PretrainedFeatureExtractor(folder, sample_rate=SR, clip_seconds=1.0, cache=False).fit_transform(clips[:4])
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        values = extractor(clips[:4], sampling_rate=SR, return_tensors="pt")["input_values"]
        want = model(input_values=values).last_hidden_state[:, prefix:].mean(1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_contract_kit_and_the_catalog_know_audio_encoders(folders):
    for kind in ("wav2vec2", "ast"):
        backbone = check_backbone(folders[kind])
        assert backbone.stage_names == ["embeddings", "layer0", "layer1"]
        assert isinstance(backbone.data_config, AudioEncoderConfig) and backbone.data_config.sample_rate == SR
        assert check_backbone(folders[kind], device="meta").modality == "audio"
        assert backbone_modality(folders[kind]) == "audio"
    row = describe_backbone(folders["wav2vec2"])
    assert (row["modality"], row["features"], row["input"]) == ("audio", "32", "2 s at 16000 Hz")


def test_hub_names_are_read_from_the_offline_cache_only(folders, sounds, tmp_path, monkeypatch):
    import shutil

    clips, _ = sounds
    snapshot = tmp_path / "hub" / "models--tiny--speech" / "snapshots" / "0123abcd"
    shutil.copytree(folders["wav2vec2"], snapshot)
    (tmp_path / "hub" / "models--tiny--speech" / "refs").mkdir()
    (tmp_path / "hub" / "models--tiny--speech" / "refs" / "main").write_text("0123abcd")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read once at import: set it as read
    assert backbone_modality("hf/tiny/speech") == "audio"
    hub = PretrainedFeatureExtractor("hf/tiny/speech", sample_rate=SR, cache=False).fit_transform(clips[:3])
    local = PretrainedFeatureExtractor(folders["wav2vec2"], sample_rate=SR, cache=False).fit_transform(clips[:3])
    np.testing.assert_array_equal(hub, local)
    with pytest.raises(WeightsUnavailableError, match=r"not in the local Hugging Face cache \(.*hub\).*"
                                                      "huggingface-cli download tiny/absent"):
        PretrainedFeatureExtractor("hf/tiny/absent", sample_rate=SR).fit(clips[:3])


def test_fine_tuning_freezes_the_feature_encoder_first_and_learns(folders, sounds):
    clips, noisy = sounds
    probe = FineTunedClassifier(folders["wav2vec2"], freeze_depth="all", sample_rate=SR, random_state=0)
    assert probe.fit(clips, noisy).score(clips, noisy) >= 0.9
    tuned = FineTunedClassifier(folders["wav2vec2"], freeze_depth=1, max_epochs=3, batch_size=8, lr=1e-3,
                                head_init="probe", sample_rate=SR, random_state=0).fit(clips, noisy)
    assert tuned.score(clips, noisy) >= 0.9
    before = transformers.AutoModel.from_pretrained(folders["wav2vec2"])
    after = tuned.net_.module_.trunk.model
    assert torch.equal(after.feature_extractor.conv_layers[0].conv.weight, before.feature_extractor.conv_layers[0].conv.weight)
    assert not torch.equal(after.encoder.layers[1].feed_forward.output_dense.weight,
                           before.encoder.layers[1].feed_forward.output_dense.weight)
    loud = [c for c, n in zip(clips, noisy) if n]
    levels = np.linspace(0.2, 2.0, len(loud))
    regressor = FineTunedRegressor(folders["ast"], freeze_depth="all", probe_C=100.0, sample_rate=SR)
    assert regressor.fit([c * g for c, g in zip(loud, levels)], np.log(levels)).score(
        [c * g for c, g in zip(loud, levels)], np.log(levels)) > 0.5


def test_pipelines_searches_and_model_files(folders, sounds, tmp_path):
    clips, noisy = sounds
    extractor = PretrainedFeatureExtractor(folders["ast"], sample_rate=SR, clip_seconds=1.0)
    search = GridSearchCV(Pipeline([("feat", extractor), ("clf", LogisticRegression(max_iter=500))]),
                          {"clf__C": [0.1, 10.0]}, cv=2).fit(clips, noisy)
    assert search.best_score_ >= 0.8
    first = extractor.fit_transform(clips)
    loaded = sktransfer.load(sktransfer.save(extractor, tmp_path / "ext.safetensors"))
    np.testing.assert_array_equal(loaded.transform(clips), first)
    clf = FineTunedClassifier(folders["hubert"], max_epochs=1, batch_size=8, sample_rate=SR, random_state=0)
    expected = clf.fit(clips, noisy).predict_proba(clips)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(clips), expected)
    np.testing.assert_allclose(
        sktransfer.load(sktransfer.save(clf, tmp_path / "clf.safetensors")).predict_proba(clips), expected, atol=1e-6)
    sio = pytest.importorskip("skops.io")
    sio.dump(clf, tmp_path / "clf.skops")
    np.testing.assert_allclose(
        sio.load(tmp_path / "clf.skops", trusted=sktransfer.SKOPS_TRUSTED_TYPES).predict_proba(clips), expected,
        atol=1e-6)


def test_image_settings_and_stages_are_refused_by_name(folders, sounds):
    clips, _ = sounds
    with pytest.raises(ValueError, match="input_size=.* does not apply to the audio encoder"):
        PretrainedFeatureExtractor(folders["wav2vec2"], input_size=64, sample_rate=SR).fit(clips[:2])
    with pytest.raises(ValueError, match="cannot run a prefix of its stages"):
        PretrainedFeatureExtractor(folders["wav2vec2"], stage="layer0", sample_rate=SR).fit(clips[:2])
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET1K_V1'"):
        PretrainedFeatureExtractor(folders["wav2vec2"], weights="IMAGENET1K_V1", sample_rate=SR).fit(clips[:2])
