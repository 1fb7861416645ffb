"""sktransfer.export: ONNX files run by onnxruntime (and .pt2 programs) give what the estimators
return, at any batch size, with the metadata to read them; what cannot export is refused."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import sktransfer
from sktransfer import FineTunedClassifier, FineTunedRegressor, PretrainedFeatureExtractor
from sktransfer.persistence.export import OPSET

from .conftest import TINY

ort = pytest.importorskip("onnxruntime")

SMALL = {"max_epochs": 2, "batch_size": 8, "random_state": 0}
LABELS = np.array(["cat", "dog", "owl"])


def run_onnx(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def assert_batches_match(path, want, inputs):
    """Batches of 1 and 5 (the export traced 2): the graph's batch is dynamic."""
    for n in (1, 5):
        got = run_onnx(path, inputs[:n])
        assert got.shape == want(inputs[:n]).shape
        assert np.abs(got - want(inputs[:n])).max() <= 1e-4


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def classifier(images):
    return FineTunedClassifier(TINY, **SMALL).fit(images, LABELS[np.arange(48) % 3])


def test_a_classifier_gives_predict_proba_with_its_labels_in_the_metadata(classifier, images, tmp_path):
    path = sktransfer.export(classifier, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert_batches_match(path, classifier.predict_proba, images)
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["cat", "dog", "owl"]
    assert (meta["task"], meta["output"], meta["estimator"], meta["tta"]) == (
        "classification", "probabilities", "FineTunedClassifier", "none")
    assert json.loads(meta["input_size"]) == [16, 16] and meta["input_layout"] == "NHWC"
    assert meta["sktransfer_version"] == sktransfer.__version__ and json.loads(meta["opset"]) == OPSET
    assert [o.version for o in model.opset_import if o.domain == ""] == [OPSET]
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "images" and dims == ["batch", 16, 16, 3]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # mapping outputs to labels as a production user would
    proba = run_onnx(path, images[:6])
    np.testing.assert_array_equal(np.array(json.loads(meta["classes"]))[proba.argmax(1)], classifier.predict(images[:6]))


def test_multilabel_outputs_are_one_sigmoid_per_label(images, tmp_path):
    Y = np.stack([images.mean((1, 2, 3)) > 127, images[..., 0].mean((1, 2)) > images[..., 2].mean((1, 2))], 1)
    model = FineTunedClassifier(TINY, **SMALL).fit(images, Y.astype(int))
    path = sktransfer.export(model, tmp_path / "labels.onnx")
    assert_batches_match(path, model.predict_proba, images)
    assert not np.allclose(run_onnx(path, images[:5]).sum(1), 1)  # independent labels, not a softmax
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert (meta["task"], json.loads(meta["classes"])) == ("multilabel", [0, 1])


@pytest.mark.parametrize("columns", [1, 2])
def test_a_regressor_gives_predict_in_the_targets_units(images, rng, tmp_path, columns):
    brightness = images.mean((1, 2, 3)) / 255
    y = 50.0 + 400.0 * brightness[:, None] + 5 * rng.standard_normal((48, columns))
    y = y[:, 0] if columns == 1 else y
    model = FineTunedRegressor(TINY, **SMALL).fit(images, y)
    assert abs(model._target_scaling["mean"][0]) > 100  # the standardization is undone in the graph
    path = sktransfer.export(model, tmp_path / "regressor.onnx")
    assert_batches_match(path, model.predict, images)
    assert run_onnx(path, images[:3]).shape == ((3,) if columns == 1 else (3, 2))


def test_an_extractor_gives_its_features(images, tmp_path):
    extractor = PretrainedFeatureExtractor(TINY, pooling="catavgmax", cache=False).fit(images)
    path = sktransfer.export(extractor, tmp_path / "features.onnx")
    assert_batches_match(path, extractor.transform, images)
    assert run_onnx(path, images[:2]).shape == (2, 32)


def test_flips_at_prediction_are_in_the_graph(classifier, images, tmp_path):
    plain = run_onnx(sktransfer.export(classifier, tmp_path / "plain.onnx"), images[:5])
    classifier.set_params(tta="flip")  # read when predicting, so when exporting too
    path = sktransfer.export(classifier, tmp_path / "flip.onnx")
    assert_batches_match(path, classifier.predict_proba, images)
    assert np.abs(run_onnx(path, images[:5]) - plain).max() > 1e-3  # the mirror images count
    assert {p.key: p.value for p in onnx.load(path).metadata_props}["tta"] == "flip"


def test_grayscale_and_center_crop_models(rng, tmp_path):
    gray = rng.integers(0, 256, (32, 16, 16), dtype=np.uint8)
    model = FineTunedClassifier(TINY, resize="center_crop", **SMALL).fit(gray, np.arange(32) % 2)
    path = sktransfer.export(model, tmp_path / "gray.onnx")
    # one channel, as fit saw; the crop's resize runs in the graph
    assert_batches_match(path, lambda x: model.predict_proba(x[..., 0]), gray[..., None])


def test_a_loaded_model_exports_as_the_original_predicts(classifier, images, tmp_path):
    loaded = sktransfer.load(sktransfer.save(classifier, tmp_path / "model.safetensors"))
    path = sktransfer.export(loaded, tmp_path / "model.onnx")
    assert_batches_match(path, classifier.predict_proba, images)


def test_a_model_trained_with_mixing_and_an_average_exports_and_loads_as_it_predicts(images, tmp_path):
    labels = LABELS[np.arange(48) % 3]
    model = FineTunedClassifier(TINY, mixup_alpha=0.4, cutmix_alpha=1.0, ema_decay=0.9, **SMALL).fit(images, labels)
    assert_batches_match(sktransfer.export(model, tmp_path / "model.onnx"), model.predict_proba, images)
    loaded = sktransfer.load(sktransfer.save(model, tmp_path / "model.safetensors"))
    np.testing.assert_allclose(loaded.predict_proba(images), model.predict_proba(images), atol=1e-6)
    assert (loaded.mixup_alpha, loaded.cutmix_alpha, loaded.ema_decay) == (0.4, 1.0, 0.9)


def test_a_pt2_program_with_the_same_metadata(classifier, images, tmp_path):
    path = sktransfer.export(classifier, tmp_path / "model.pt2")
    extra = {"sktransfer.json": ""}
    program = torch.export.load(path, extra_files=extra)
    with torch.inference_mode():
        for n in (1, 5):
            got = program.module()(torch.from_numpy(images[:n])).numpy()
            assert np.abs(got - classifier.predict_proba(images[:n])).max() <= 1e-4
    assert json.loads(extra["sktransfer.json"])["classes"] == ["cat", "dog", "owl"]


def test_audio_through_an_image_network_exports_from_waveforms(rng, tmp_path):
    waves = [0.1 * rng.standard_normal(8000).astype(np.float32) for _ in range(4)]
    extractor = PretrainedFeatureExtractor("audio/" + TINY, sample_rate=8000, clip_seconds=0.5, cache=False).fit(waves)
    path = sktransfer.export(extractor, tmp_path / "sound.onnx")
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert (json.loads(meta["sample_rate"]), json.loads(meta["clip_samples"])) == (16000, 8000)
    clips = 0.1 * rng.standard_normal((5, 8000)).astype(np.float32)  # 0.5 s at the backbone's 16 kHz
    extractor.set_params(sample_rate=16000)
    assert_batches_match(path, lambda x: extractor.transform(list(x)), clips)


def test_what_cannot_export_is_refused_clearly(classifier, images, tmp_path):
    with pytest.raises(NotFittedError):
        sktransfer.export(FineTunedClassifier(TINY), tmp_path / "model.onnx")
    pipe = make_pipeline(PretrainedFeatureExtractor(TINY), LogisticRegression()).fit(images, np.arange(48) % 2)
    with pytest.raises(TypeError, match=r"not a Pipeline\. For a Pipeline, export its sktransfer step"):
        sktransfer.export(pipe, tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=r"\.onnx or \.pt2 files, chosen by the path's suffix"):
        sktransfer.export(classifier, tmp_path / "model.bin")
    classifier.tta = "mirror"  # checked when exporting, as when predicting
    with pytest.raises(ValueError, match="tta"):
        sktransfer.export(classifier, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_text_model_is_refused_with_what_to_do(tmp_path):
    texts = ["a cat sleeps", "stocks fell"]
    extractor = PretrainedFeatureExtractor("sentence-transformers/all-MiniLM-L6-v2", weights=None,
                                           random_state=0, cache=False).fit(texts)
    with pytest.raises(ValueError, match=r"a text model: its tokenizer.* cannot be part of the graph\. Serve"):
        sktransfer.export(extractor, tmp_path / "text.onnx")


def test_an_audio_encoder_is_refused_with_what_to_do(tmp_path, rng):
    import transformers

    config = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, conv_dim=(8, 8), conv_stride=(5, 4),
                                         conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path / "speech")
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path / "speech")
    clips = [0.1 * rng.standard_normal(16000).astype(np.float32) for _ in range(2)]
    extractor = PretrainedFeatureExtractor(str(tmp_path / "speech"), sample_rate=16000, cache=False).fit(clips)
    with pytest.raises(ValueError, match=r"an audio encoder: .*feature extractor.* audio/<image backbone>"):
        sktransfer.export(extractor, tmp_path / "speech.onnx")
