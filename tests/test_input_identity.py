"""What the network sees is what is keyed: decoding rules (palettes, bit depth, EXIF, PIL
modes), folder walking, files that change while read, damaged cache files, and edited model
files. Each test performs a user's step and checks the answer against a run without the cache
or an input built by hand."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sktransfer
from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor, feature_cache
from sktransfer.engine.cache import FeatureKey
from sktransfer.engine.features import extract
from sktransfer.data.decoding import pil_to_rgb
from sktransfer.datasets import load_image_folder

from .conftest import TINY


pytestmark = pytest.mark.usefixtures("empty_cache")


def features(X, **params):
    return PretrainedFeatureExtractor(TINY, **params).fit(X).transform(X)


def reference(X, **params):
    """The features of ``X`` computed without the cache."""
    return features(X, cache=False, **params)


def rgb(rng, h=16, w=24):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------------- palettes


def test_palette_images_with_other_palettes_are_other_images(rng):
    indices = rng.integers(0, 4, (16, 16), dtype=np.uint8)
    colours = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]
    a, b = Image.fromarray(indices, "P"), Image.fromarray(indices, "P")
    a.putpalette(colours)
    b.putpalette(colours[::-1])
    assert a.tobytes() == b.tobytes()  # the old fingerprint saw the same image twice
    extractor = PretrainedFeatureExtractor(TINY).fit([a])
    fa, fb = extractor.transform([a]), extractor.transform([b])
    assert feature_cache.stats()["computed"] == 2
    assert not np.allclose(fa, fb)
    np.testing.assert_allclose(fb, reference([b]), atol=1e-6)
    # the palette is what the network sees: b as the RGB array its palette gives
    np.testing.assert_allclose(fb, reference(np.array(b.convert("RGB"))[None]), atol=1e-6)


# ---------------------------------------------------------------------- bit depth


def _save(image, path, **kwargs):
    image.save(path, **kwargs)
    return str(path)


def _gray_as_rgb(gray8):
    return np.repeat(gray8[..., None], 3, axis=-1)


def test_sixteen_bit_files_pil_images_arrays_and_tensors_agree(tmp_path, rng):
    values = rng.integers(0, 65536, (2, 16, 16), dtype=np.uint16)
    values[0, 0, :4] = [0, 257, 65535, 128]
    expected8 = np.rint(values / 257).astype(np.uint8)
    assert expected8[0, 0, :4].tolist() == [0, 1, 255, 0]
    paths = [_save(Image.fromarray(v), tmp_path / f"{i}.png") for i, v in enumerate(values)]
    assert Image.open(paths[0]).mode == "I;16"
    want = reference(_gray_as_rgb(expected8))
    np.testing.assert_allclose(features(paths), want, atol=1e-6)
    np.testing.assert_allclose(features([Image.open(p) for p in paths]), want, atol=1e-6)
    np.testing.assert_allclose(features(values), reference(expected8), atol=1e-6)  # a uint16 array
    np.testing.assert_allclose(features(torch.from_numpy(values)), reference(expected8), atol=1e-6)
    # not the saturated black-and-white image that PIL's own conversion makes
    saturated = np.where(values > 0, 255, 0).astype(np.uint8)
    assert not np.allclose(features(paths), reference(_gray_as_rgb(saturated)), atol=1e-3)


def test_sixteen_bit_pgm_and_tiff_files(tmp_path, rng):
    values = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    pgm = tmp_path / "deep.pgm"
    pgm.write_bytes(b"P5 16 16 65535\n" + values.astype(">u2").tobytes())
    assert Image.open(pgm).mode == "I"  # PIL's 32-bit mode, scaled to 16 bits
    tiff = _save(Image.fromarray(values), tmp_path / "deep.tif")
    want = reference(_gray_as_rgb(np.rint(values / 257).astype(np.uint8))[None])
    np.testing.assert_allclose(features([str(pgm)]), want, atol=1e-6)
    np.testing.assert_allclose(features([tiff]), want, atol=1e-6)


def test_sixteen_bit_colour_files_are_within_one_level_of_the_rule(tmp_path, rng):
    values = rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    path = tmp_path / "deep.ppm"
    path.write_bytes(b"P6 16 16 65535\n" + values.astype(">u2").tobytes())
    decoded = pil_to_rgb(Image.open(path))  # Pillow's own 16-to-8-bit conversion
    assert np.abs(decoded.astype(int) - np.rint(values / 257)).max() <= 1  # the arrays' rule, within a level
    np.testing.assert_allclose(features([str(path)]), reference(decoded[None]), atol=1e-6)


def test_big_endian_arrays_are_their_values(rng):
    values = rng.integers(0, 65536, (2, 16, 16, 3), dtype=np.uint16)
    np.testing.assert_array_equal(features(values.astype(">u2")), features(values))
    floats = rng.random((2, 16, 16, 3))
    np.testing.assert_allclose(features(floats.astype(">f4")), features(floats.astype(np.float32)), atol=1e-6)


def test_float_images_follow_value_range(tmp_path, rng):
    values = rng.random((16, 16), dtype=np.float32)
    image = Image.fromarray(values)
    assert image.mode == "F"
    want = reference(_gray_as_rgb(np.rint(values * 255).astype(np.uint8))[None])
    np.testing.assert_allclose(features([image]), want, atol=1e-6)
    tiff = _save(image, tmp_path / "float.tif")
    np.testing.assert_allclose(features([tiff]), want, atol=1e-6)
    scaled = Image.fromarray(values * 255)
    np.testing.assert_allclose(features([scaled], value_range=(0, 255)), want, atol=1e-6)
    with pytest.raises(ValueError, match=r"X\[0\]: cannot use PIL image: its float pixels lie in \[0.*, 2.*\], "
                                         r"outside value_range=\(0, 1\)"):
        features([Image.fromarray(values * 2 + 0.5)])
    nan = values.copy()
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match=r"X\[0\]: .*NaN or infinity"):
        features([Image.fromarray(nan)], cache=False)


def test_wide_integer_pixels_outside_the_byte_range_are_refused_not_clipped():
    image = Image.fromarray(np.full((8, 8), 300, dtype=np.int32))
    assert image.mode == "I"
    with pytest.raises(ValueError, match=r"X\[0\]: .*32-bit integer pixels .* lie in \[300, 300\], outside \[0, 255\]"):
        features([image])
    within = Image.fromarray(np.full((8, 8), 200, dtype=np.int32))
    np.testing.assert_allclose(features([within]), reference(np.full((1, 8, 8, 3), 200, np.uint8)), atol=1e-6)


# ---------------------------------------------------------------------- EXIF


def test_exif_orientation_is_one_rule_for_paths_and_pil_images(tmp_path, rng):
    pixels = rgb(rng, 16, 24)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show it upright
    path = _save(image, tmp_path / "photo.png", exif=exif)
    upright = np.rot90(pixels, k=-1)  # what a viewer shows: 24 x 16
    want = reference(np.ascontiguousarray(upright)[None])
    np.testing.assert_allclose(features([path]), want, atol=1e-6)
    opened = Image.open(path)
    np.testing.assert_allclose(features([opened]), want, atol=1e-6)  # the same file as a PIL image
    # an image transposed already has no orientation left: never turned twice
    from PIL import ImageOps

    np.testing.assert_allclose(features([ImageOps.exif_transpose(Image.open(path))]), want, atol=1e-6)


# ---------------------------------------------------------------------- other modes and formats


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV",
                                  "I;16", "I;16B"])
def test_every_pil_mode_decodes_to_what_its_rgb_conversion_shows(mode, rng):
    base = Image.fromarray(rgb(rng))
    image = base.convert(mode) if mode not in ("I;16", "I;16B") else Image.fromarray(
        rng.integers(0, 65536, (16, 24), dtype=np.uint16)).convert(mode)
    got = features([image])
    np.testing.assert_allclose(got, reference(pil_to_rgb(image)[None]), atol=1e-6)
    assert np.isfinite(got).all()


def test_a_mode_that_cannot_become_rgb_is_refused_by_name(rng):
    image = Image.fromarray(rgb(rng)).convert("RGBA").convert("La")
    with pytest.raises(ValueError, match=r"X\[0\]: cannot use PIL image: its PIL mode 'La' cannot be converted"):
        features([image])


def test_an_animated_gif_is_its_first_frame(tmp_path, rng):
    frames = [Image.fromarray(rgb(rng)).quantize(16) for _ in range(3)]
    path = tmp_path / "moving.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 3
    first = np.array(Image.open(path).convert("RGB"))
    np.testing.assert_allclose(features([str(path)]), reference(first[None]), atol=1e-6)


def test_a_cmyk_jpeg(tmp_path, rng):
    path = _save(Image.fromarray(rgb(rng)).convert("CMYK"), tmp_path / "print.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    want = reference(np.array(Image.open(path).convert("RGB"))[None])
    np.testing.assert_allclose(features([path]), want, atol=1e-6)
    np.testing.assert_allclose(features([Image.open(path)]), want, atol=1e-6)


# ---------------------------------------------------------------------- hostile paths


@pytest.mark.parametrize("cache", [True, False])
def test_a_sparse_file_of_a_terabyte_is_refused_before_it_is_read(tmp_path, cache):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.truncate(1 << 40)
    extractor = PretrainedFeatureExtractor(TINY, cache=cache).fit(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"X\[0\]: cannot read image file .*huge\.png.*more than any image"):
        extractor.transform([str(path)])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
@pytest.mark.parametrize("cache", [True, False])
def test_a_named_pipe_or_a_device_is_refused_without_hanging(tmp_path, cache):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    extractor = PretrainedFeatureExtractor(TINY, cache=cache).fit(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"X\[0\]: cannot read image file .*pipe\.png.*not a regular file"):
        extractor.transform([str(fifo)])
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match=r"not a regular file"):
            extractor.transform(["/dev/zero"])


def test_every_unreadable_file_is_named_when_the_cache_hashes_them(tmp_path, rng):
    good = _save(Image.fromarray(rgb(rng)), tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    os.mkdir(tmp_path / "folder.png")
    extractor = PretrainedFeatureExtractor(TINY).fit([good])
    os.rmdir(tmp_path / "folder.png")
    with pytest.raises(FileNotFoundError, match=r"X\[1\]: image file not found"):
        extractor.transform([good, str(tmp_path / "folder.png")])
    (tmp_path / "gone.png").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        extractor.transform([str(tmp_path / "bad.png"), good, str(tmp_path / "gone.png")])
    assert "2 of 3 images cannot be used" in str(error.value)
    assert "X[0]: cannot read image file" in str(error.value) and "X[2]: cannot read image file" in str(error.value)


def test_a_file_replaced_between_calls_is_another_image(tmp_path, rng):
    path = tmp_path / "img.png"
    first, second = rgb(rng), rgb(rng)
    Image.fromarray(first).save(path)
    extractor = PretrainedFeatureExtractor(TINY).fit([str(path)])
    before = extractor.transform([str(path)])
    stat = path.stat()
    Image.fromarray(second).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time stamps: content decides
    after = extractor.transform([str(path)])
    np.testing.assert_allclose(before, reference(first[None]), atol=1e-6)
    np.testing.assert_allclose(after, reference(second[None]), atol=1e-6)


# ---------------------------------------------------------------------- a file that changes while read


def test_a_file_changed_while_it_is_read_keys_the_bytes_decoded(tmp_path, rng):
    """The file is rewritten after the cache hashed it and before the network reads it (the
    moment ``extract`` hands the work over): its features are stored under the new bytes'
    digest, never under the old one."""
    path = tmp_path / "img.png"
    old, new = rgb(rng), rgb(rng)
    Image.fromarray(old).save(path)
    extractor = PretrainedFeatureExtractor(TINY, cache_dir=tmp_path / "cache").fit([str(path)])
    spec = extractor._spec
    key = FeatureKey(spec, extractor.data_config_, extractor._stage_index, extractor.model_)
    from sktransfer.data.inputs import list_source

    def rewrite_then_run(model, n):
        Image.fromarray(new).save(path)
        return model

    source = list_source([str(path)])
    got = extract(extractor.model_, source, extractor._n_features_out, batch_size=4, device=torch.device("cpu"),
                  key=key, directory=tmp_path / "cache", wrap=rewrite_then_run)
    np.testing.assert_allclose(got, reference(new[None]), atol=1e-6)  # what was read
    # the old bytes are not keyed to the new features, in memory or on disk
    Image.fromarray(old).save(path)
    feature_cache.clear()
    np.testing.assert_allclose(extractor.transform([str(path)]), reference(old[None]), atol=1e-6)
    Image.fromarray(new).save(path)
    feature_cache.clear()
    np.testing.assert_allclose(extractor.transform([str(path)]), reference(new[None]), atol=1e-6)
    assert feature_cache.stats()["hits"] == 1  # the new bytes' row, from the cache_dir


# ---------------------------------------------------------------------- folder walking


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


@pytest.fixture
def two_classes(tmp_path):
    root = tmp_path / "data"
    for name, value in (("a", 10), ("b", 200)):
        for i in range(2):
            _png(root / name / f"{i}.png", value + i)
    return root


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_a_link_loop_in_a_class_folder_reads_no_image_twice(two_classes):
    os.symlink("..", two_classes / "a" / "up")
    with pytest.warns(UserWarning, match=r"1 path\(s\) under .* skipped: '.*a/up' \(a loop: a link to a folder that holds it"):
        data = load_image_folder(two_classes)
    assert np.bincount(data.target).tolist() == [2, 2]
    assert all("/up/" not in p for p in data.paths)
    # a class folder on its own (the command line's extract and predict): the loop is skipped too
    from sktransfer.data.files import find_images

    with pytest.warns(UserWarning, match="a loop"):
        assert [os.path.basename(p) for p in find_images(two_classes / "a")] == ["0.png", "1.png"]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_links_into_another_class_and_to_the_same_file_count_once(two_classes, tmp_path):
    os.symlink(two_classes / "b", two_classes / "a" / "also_b")
    os.symlink(two_classes / "b" / "0.png", two_classes / "a" / "b0.png")
    os.symlink(two_classes / "a" / "0.png", two_classes / "a" / "again.png")
    os.symlink(two_classes / "a" / "nowhere.png", two_classes / "a" / "broken.png")
    outside = tmp_path / "shared"  # a folder outside the dataset, linked into a class: its images
    _png(outside / "x.png", 50)
    os.symlink(outside, two_classes / "b" / "shared")
    with pytest.warns(UserWarning) as record:
        data = load_image_folder(two_classes)
    message = str(record[0].message)
    assert message.startswith("4 path(s) under")
    assert "also_b' (a link into" in message and "b0.png' (a link into" in message
    assert "again.png' (the same file as" in message and "broken.png' (a broken link)" in message
    assert np.bincount(data.target).tolist() == [2, 3]
    assert sorted(os.path.basename(p) for p in data.paths[data.target == 1]) == ["0.png", "1.png", "x.png"]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_the_cli_reads_a_folder_with_a_loop_once(two_classes, tmp_path):
    os.symlink("..", two_classes / "a" / "up")
    script = Path(sys.executable).with_name("sktransfer")
    result = subprocess.run([str(script), "extract", str(two_classes), "-b", "resnet18", "--weights", "none",
                             "--input-size", "16", "-o", str(tmp_path / "f.csv")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "a/up" in result.stderr
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 1 + 4


# ---------------------------------------------------------------------- damaged cache files


def _damage_nan_tail(features, digests):
    with open(features, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(np.full(2, np.nan, dtype=np.float32).tobytes())


def _damage_truncate(features, digests):
    with open(features, "r+b") as f:
        f.truncate(os.path.getsize(features) // 2)


def _damage_short(features, digests):
    rows = np.load(features)
    np.save(features, rows[:-3])


def _damage_digests(features, digests):
    digests.write_bytes(b"\x93NUMPY garbage")


def _damage_one_bit(features, digests):
    data = bytearray(features.read_bytes())
    data[200] ^= 1
    features.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_nan_tail, _damage_truncate, _damage_short, _damage_digests,
                                    _damage_one_bit])
def test_a_damaged_cache_chunk_is_discarded_with_a_warning_and_recomputed(tmp_path, rng, damage):
    X = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    cache_dir = tmp_path / "cache"
    extractor = PretrainedFeatureExtractor(TINY, cache_dir=cache_dir).fit(X)
    want = extractor.transform(X)
    [features_file] = list(cache_dir.rglob("*.features.npy"))
    digests_file = features_file.with_name(features_file.name.replace(".features.", ".digests."))
    damage(features_file, digests_file)
    feature_cache.clear()  # a later session: only the cache_dir remains
    with pytest.warns(RuntimeWarning, match=rf"feature cache file '.*{features_file.name}' is damaged .* discarded"):
        got = extractor.transform(X)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, reference(X), atol=1e-6)
    assert not features_file.exists() and not digests_file.exists()
    # images never in the damaged chunk work too, and the next session reads a good chunk
    other = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(extractor.transform(other), reference(other), atol=1e-6)
    feature_cache.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(extractor.transform(X), want)
    assert feature_cache.stats()["misses"] == 0


# ---------------------------------------------------------------------- the cache steps aside


def test_the_cache_steps_aside_where_checking_costs_more_than_computing(uint8_images, tmp_path):
    extractor = PretrainedFeatureExtractor(TINY).fit(uint8_images)
    want = extractor.transform(uint8_images)
    configuration = FeatureKey(extractor._spec, extractor.data_config_, extractor._stage_index,
                               extractor.model_).configuration
    costs = feature_cache._costs[(configuration, "array")]
    assert costs["calls"] == 1 and costs["looked"] == 12 and costs["computed"] == 12 and costs["hits"] == 0
    assert costs["overhead"] > 0 and costs["compute"] > 0  # both measured by the first call
    assert feature_cache.use(configuration, "array")
    feature_cache.clear()
    # checking costs what computing does (1 ms an image): no hit can pay for it
    for _ in range(3):
        feature_cache.measured(configuration, "array", looked=400, hits=200, overhead=0.4, computed=200, compute=0.2)
    assert not feature_cache.use(configuration, "array")
    before = feature_cache.stats()
    np.testing.assert_array_equal(extractor.transform(uint8_images), want)
    assert feature_cache.stats() == before  # not looked up, not stored
    # a cache_dir is never stepped aside: its rows serve later sessions
    with_folder = PretrainedFeatureExtractor(TINY, cache_dir=tmp_path).fit(uint8_images)
    np.testing.assert_array_equal(with_folder.transform(uint8_images), want)
    assert feature_cache.stats()["misses"] == before["misses"] + len(uint8_images)
    assert len(list(tmp_path.rglob("*.features.npy"))) == 1
    # a tenth of the computing, and no hits over three calls: steps aside
    feature_cache.clear()
    for _ in range(2):
        feature_cache.measured(configuration, "array", looked=400, hits=0, overhead=0.04, computed=400, compute=0.4)
    assert feature_cache.use(configuration, "array")  # still on trial
    feature_cache.measured(configuration, "array", looked=400, hits=0, overhead=0.04, computed=400, compute=0.4)
    # ... and tries again on the 8th call, then the 16th after it: later hits still count
    assert [feature_cache.use(configuration, "array") for _ in range(8 + 16)] == (
        [False] * 7 + [True] + [False] * 15 + [True])
    # ... but the same costs with the hits of a cross-validation (a third) pay: it stays
    feature_cache.clear()
    for _ in range(3):
        feature_cache.measured(configuration, "array", looked=600, hits=200, overhead=0.06, computed=400, compute=0.4)
    assert feature_cache.use(configuration, "array")
    # and a cache that costs under 2 % of the computing stays without a hit
    feature_cache.clear()
    for _ in range(5):
        feature_cache.measured(configuration, "array", looked=400, hits=0, overhead=0.004, computed=400, compute=0.4)
    assert feature_cache.use(configuration, "array")
    extractor.transform(uint8_images)
    assert feature_cache.stats()["misses"] == len(uint8_images)


# ---------------------------------------------------------------------- half-precision tensors


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tensors_with_the_cache_on(dtype, rng):
    X = torch.from_numpy(rng.random((4, 3, 16, 16), dtype=np.float32)).to(dtype)
    got = features(X)
    np.testing.assert_allclose(got, reference(X.float()), atol=1e-6)
    assert feature_cache.stats()["computed"] == 4


# ---------------------------------------------------------------------- model files


@pytest.fixture
def saved(tmp_path, uint8_images):
    extractor = PretrainedFeatureExtractor(TINY, cache_dir=tmp_path / "cache").fit(uint8_images)
    return extractor, sktransfer.save(extractor, tmp_path / "model.safetensors")


def _edit(path, change):
    from safetensors.numpy import save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    header = json.loads(metadata["sktransfer"])
    text = change(header)
    save_file(tensors, str(path), metadata={"sktransfer": text if isinstance(text, str) else json.dumps(header)})
    return path


def _missing_tensor(header):
    arrays = header["state"]["_network"]["arrays"]
    first = next(iter(arrays))
    arrays[first] = {"__tensor__": "state/_network/arrays/nowhere"}


def _list_state(header):
    header["state"] = [1, 2, 3]


def _nested(header):
    text = json.dumps(header)
    return text.replace('"verbose": 0', '"verbose": ' + "[" * 100_000 + "]" * 100_000)


def _under_classifier(header):
    header["estimator"] = "FineTunedClassifier"


def _method_replaced(header):
    header["state"]["predict_proba"] = "hello"


def _dangling_alias(header):
    header["state"]["_network"]["aliases"] = {"trunk.x": "trunk.nothing"}


def _bad_record(header):
    header["state"]["data_config_"] = {"colour": "blue"}


@pytest.mark.parametrize("change, problem", [
    (_missing_tensor, "names a tensor 'state/_network/arrays/nowhere' that the file does not hold"),
    (_list_state, "must be a dict of attributes, not a list"),
    (_nested, "malformed sktransfer header: RecursionError"),
    (_under_classifier, "attributes that FineTunedClassifier does not declare"),
    (_method_replaced, "attributes that PretrainedFeatureExtractor does not declare: predict_proba"),
    (_dangling_alias, "alias of 'trunk.nothing', which the state does not hold"),
    (_bad_record, "data_config_ is not a DataConfig"),
])
def test_an_edited_model_file_is_a_value_error_naming_file_and_problem(saved, change, problem):
    _, path = saved
    _edit(path, change)
    with pytest.raises(ValueError) as error:
        sktransfer.load(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_loading_a_directory_or_a_missing_file_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a model file"):
        sktransfer.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"model file not found: .*nope\.safetensors"):
        sktransfer.load(tmp_path / "nope.safetensors")


def test_cache_dir_stays_on_the_machine_that_saved(saved, tmp_path, uint8_images):
    extractor, path = saved
    assert extractor.cache_dir == tmp_path / "cache"
    loaded = sktransfer.load(path)
    assert loaded.cache_dir is None
    feature_cache.clear()
    np.testing.assert_array_equal(loaded.transform(uint8_images), extractor.transform(uint8_images))
    assert not (tmp_path / "cache").exists()  # the saving machine's folder: never created or read


def test_a_classifier_file_with_an_unknown_attribute_is_refused(data, tmp_path):
    X, y = data
    clf = FineTunedClassifier(TINY, max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    path = _edit(sktransfer.save(clf, tmp_path / "clf.safetensors"),
                 lambda header: header["state"].update(classes_extra=[1]))
    with pytest.raises(ValueError, match=r"does not declare: classes_extra"):
        sktransfer.load(path)
    # the same rule for pickles: state that the class does not declare never lands on it
    state = clf.__getstate__()
    state["predict"] = "hello"
    with pytest.raises(ValueError, match=r"does not declare: predict"):
        FineTunedClassifier.__new__(FineTunedClassifier).__setstate__(state)


def test_a_damaged_npy_header_in_the_cache_is_a_warning_not_a_crash(tmp_path, uint8_images):
    cache_dir = tmp_path / "cache"
    extractor = PretrainedFeatureExtractor(TINY, cache_dir=cache_dir).fit(uint8_images)
    want = extractor.transform(uint8_images)
    [features_file] = list(cache_dir.rglob("*.features.npy"))
    features_file.write_bytes(io.BytesIO(b"\x00" * 64).getvalue())
    feature_cache.clear()
    with pytest.warns(RuntimeWarning, match="features cannot be read"):
        np.testing.assert_array_equal(extractor.transform(uint8_images), want)
