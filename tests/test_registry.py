"""The backbone registry and its plugin entry points."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision

from sktransfer import Backbone, get_backbone, list_backbones, register_backbone
from sktransfer.backbones import sequential_backbone

from .conftest import TINY, TINY_CONFIG, tiny_cnn


def test_every_torchvision_classification_model_is_listed():
    expected = set(torchvision.models.list_models(module=torchvision.models))
    assert expected <= set(list_backbones())
    assert "efficientnet_lite0" in list_backbones()


def test_wildcards_are_case_insensitive():
    assert list_backbones("RESNET1*") == ["resnet101", "resnet152", "resnet18"]
    assert list_backbones("*lite0") == ["efficientnet_lite0", "timm/efficientnet_lite0",
                                        "timm/tf_efficientnet_lite0"]
    assert list_backbones("no-such-*") == []


def test_timm_namespace_lists_and_builds():
    assert "timm/resnet18" in list_backbones("timm/resnet1*")
    backbone = get_backbone("timm/resnet18", weights=None)
    assert backbone.num_features == 512
    assert backbone.data_config.interpolation == "bicubic"  # timm's own config, not torchvision's
    with pytest.raises(ValueError, match=r"timm has no model 'resnt18'; did you mean 'timm/resnet18'"):
        get_backbone("timm/resnt18")


def test_taken_names_raise_unless_overwrite():
    with pytest.raises(ValueError, match=r"'resnet18' is already registered; pass overwrite=True"):
        register_backbone("resnet18", tiny_cnn)
    with pytest.raises(ValueError, match=r"'test/tiny-cnn' is already registered"):
        register_backbone(TINY, tiny_cnn)
    register_backbone(TINY, tiny_cnn, overwrite=True)
    assert get_backbone(TINY, weights=None).num_features == 16


def test_decorator_and_namespace_registration():
    @register_backbone("acme/*", list_names=lambda: ["small", "large"], overwrite=True)
    def acme(name, weights):
        width = 4 if name.endswith("small") else 8
        stage = torch.nn.Conv2d(3, width, 1)
        return sequential_backbone([("conv", stage)], num_features=width,
                                   data_config=TINY_CONFIG, stage_formats=("NCHW",))

    assert list_backbones("acme/*") == ["acme/large", "acme/small"]
    assert get_backbone("acme/large", weights=None).num_features == 8
    assert get_backbone("acme/anything-small", weights=None).num_features == 4


def test_unknown_names_suggest_close_matches():
    with pytest.raises(ValueError, match=r"unknown backbone 'efficientnet_b9'; did you mean 'efficientnet_b7', 'efficientnet_b6'"):
        get_backbone("efficientnet_b9")
    with pytest.raises(ValueError, match=r"unknown backbone 'zzzzzz' \(list_backbones\(\)"):
        get_backbone("zzzzzz")


def test_factories_must_return_a_backbone():
    register_backbone("test/not-a-backbone", lambda name, weights: torch.nn.Identity(), overwrite=True)
    with pytest.raises(TypeError, match=r"returned Identity, not a sktransfer.Backbone"):
        get_backbone("test/not-a-backbone")


@pytest.mark.parametrize("name", ["", "/*", None])
def test_bad_names(name):
    with pytest.raises(ValueError, match=r"backbone name must be a non-empty string"):
        register_backbone(name, tiny_cnn)


def test_backbone_validates_its_fields():
    stage = ("s", torch.nn.Identity())
    with pytest.raises(ValueError, match=r"one entry per stage"):
        Backbone(torch.nn.Identity(), (stage,), 3, TINY_CONFIG, stage_formats=())
    with pytest.raises(ValueError, match=r"unknown stage format"):
        Backbone(torch.nn.Identity(), (stage,), 3, TINY_CONFIG, stage_formats=("NWHC",))


# ----------------------------------------------------------------------------- plugins

PLUGIN = '''
import torch
from sktransfer import DataConfig
from sktransfer.backbones import sequential_backbone

def build(name, weights):
    return sequential_backbone([("conv", torch.nn.Conv2d(3, 5, 1))], num_features=5,
                               data_config=DataConfig((8, 8), (0.5,) * 3, (0.5,) * 3),
                               stage_formats=("NCHW",))
'''


def _install_plugin(tmp_path, entry_points):
    (tmp_path / "fake_sktransfer_plugin.py").write_text(PLUGIN)
    info = tmp_path / "fake_sktransfer_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sktransfer-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sktransfer.backbones]\n" + entry_points)


def _run(tmp_path, code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_entry_point_plugins_load_lazily(tmp_path):
    _install_plugin(tmp_path, "fake-net = fake_sktransfer_plugin:build\n")
    result = _run(tmp_path, """
        import sys, sktransfer
        assert "fake_sktransfer_plugin" not in sys.modules  # nothing loaded at import
        print(sktransfer.list_backbones("fake*"), sktransfer.get_backbone("fake-net").num_features)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['fake-net'] 5"


def test_broken_plugin_warns_and_never_breaks_import(tmp_path):
    _install_plugin(tmp_path, "broken-net = fake_sktransfer_plugin:missing\n"
                              "resnet18 = fake_sktransfer_plugin:build\n")
    result = _run(tmp_path, """
        import warnings, sktransfer
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = sktransfer.list_backbones()
        for w in caught:
            print("WARNING", w.message)
        print("resnet18 is torchvision's:", sktransfer.get_backbone("resnet18", weights=None).num_features == 512)
        print("broken listed:", "broken-net" in names)
    """)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "skipped backbone plugin 'broken-net'" in out and "AttributeError" in out
    assert "skipped backbone plugin 'resnet18'" in out and "already registered" in out
    assert "resnet18 is torchvision's: True" in out
    assert "broken listed: False" in out
