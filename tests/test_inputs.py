"""The one input path: every accepted kind of input, and clear errors for bad ones."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import sparse

from sktransfer import PretrainedFeatureExtractor

from .conftest import TINY


def extractor(**params):
    # cache=False: every comparison below computes both sides, in batches of 4
    return PretrainedFeatureExtractor(TINY, batch_size=4, cache=False, **params)


def features(X, **params):
    return extractor(**params).fit(X).transform(X)


def save_pngs(images, folder: Path, mode=None):
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(image, mode=mode).save(path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------- accepted inputs


def test_tiny_backbone_features_vary(uint8_images):
    # guards every equality test below against trivially equal (constant) features
    out = features(uint8_images)
    assert (out > 0).mean() > 0.5
    assert out.std(axis=0).min() > 1e-3


def test_channels_last_and_first_give_the_same_features(uint8_images):
    nhwc = features(uint8_images)
    nchw = features(np.ascontiguousarray(uint8_images.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(nhwc, nchw, rtol=1e-5, atol=1e-6)


def test_explicit_channel_axis_resolves_ambiguous_shapes(rng):
    # (n, 3, 4, 3): axis 1 and axis 3 could both hold channels
    images = rng.integers(0, 256, size=(5, 3, 4, 3), dtype=np.uint8)
    first = features(images, channel_axis=1)
    last = features(np.ascontiguousarray(images.transpose(0, 2, 3, 1)), channel_axis=-1)
    np.testing.assert_allclose(first, last, rtol=1e-5, atol=1e-6)


def test_grayscale_is_replicated_to_rgb(rng):
    gray = rng.integers(0, 256, size=(6, 16, 16), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_allclose(features(gray), features(rgb), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features(gray[..., None]), features(rgb), rtol=1e-5, atol=1e-6)


def test_rgba_drops_alpha(uint8_images, rng):
    alpha = rng.integers(0, 256, size=uint8_images.shape[:3] + (1,), dtype=np.uint8)
    rgba = np.concatenate([uint8_images, alpha], axis=-1)
    np.testing.assert_array_equal(features(rgba), features(uint8_images))


def test_float_images_in_unit_range_match_uint8(uint8_images):
    as_float = uint8_images.astype(np.float32) / 255
    np.testing.assert_allclose(features(as_float), features(uint8_images), rtol=1e-4, atol=1e-5)


def test_value_range_rescales_floats(uint8_images):
    as_255 = uint8_images.astype(np.float64)
    np.testing.assert_allclose(
        features(as_255, value_range=(0, 255)), features(uint8_images), rtol=1e-4, atol=1e-5
    )


def test_other_integer_dtypes_within_uint8_range(uint8_images):
    np.testing.assert_array_equal(features(uint8_images.astype(np.int64)), features(uint8_images))


def test_flattened_rows_with_image_shape(uint8_images):
    rows = uint8_images.reshape(len(uint8_images), -1)
    np.testing.assert_array_equal(features(rows, image_shape=(20, 24, 3)), features(uint8_images))
    frame = pd.DataFrame(rows, columns=[f"px{i}" for i in range(rows.shape[1])])
    fitted = extractor(image_shape=(20, 24, 3)).fit(frame)
    np.testing.assert_array_equal(fitted.transform(frame), features(uint8_images))
    assert fitted.n_features_in_ == rows.shape[1]
    assert list(fitted.feature_names_in_[:2]) == ["px0", "px1"]


def test_torch_tensor_matches_array(uint8_images):
    tensor = torch.from_numpy(uint8_images).permute(0, 3, 1, 2)
    np.testing.assert_array_equal(features(tensor), features(uint8_images))


def test_list_of_equal_size_arrays_is_stacked(uint8_images):
    np.testing.assert_array_equal(features(list(uint8_images)), features(uint8_images))


def test_pil_files_series_and_dataframe_agree(uint8_images, tmp_path):
    paths = save_pngs(uint8_images, tmp_path)
    expected = features(uint8_images)
    pil = [Image.open(p) for p in paths]
    for X in (paths, [str(p) for p in paths], pd.Series([str(p) for p in paths]),
              pd.DataFrame({"path": paths}), np.array([str(p) for p in paths]), pil):
        np.testing.assert_array_equal(features(X), expected)


def test_files_of_different_sizes(rng, tmp_path):
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(16, 16), (30, 20), (9, 40)]]
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path)
    mixed = features(paths)
    assert mixed.shape == (3, 16)
    # each image gives the features it gives alone
    for image, path, row in zip(images, paths, mixed):
        np.testing.assert_allclose(features([path]), row[None], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(features(image[None]), row[None], rtol=1e-5, atol=1e-6)


def test_grayscale_and_rgba_files_are_read_as_rgb(rng, tmp_path):
    gray = rng.integers(0, 256, size=(4, 16, 16), dtype=np.uint8)
    gray_paths = save_pngs(gray, tmp_path, mode="L")
    np.testing.assert_array_equal(features(gray_paths), features(gray))
    rgba = rng.integers(0, 256, size=(4, 16, 16, 4), dtype=np.uint8)
    rgba_paths = [tmp_path / f"rgba{i}.png" for i in range(4)]
    for image, path in zip(rgba, rgba_paths):
        Image.fromarray(image, mode="RGBA").save(path)
    np.testing.assert_array_equal(features(rgba_paths), features(rgba[..., :3]))


def test_lists_are_not_held_to_training_channels(rng, tmp_path):
    gray = rng.integers(0, 256, size=(4, 16, 16), dtype=np.uint8)
    fitted = extractor().fit(gray)
    assert fitted.n_channels_in_ == 1
    paths = save_pngs(rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8), tmp_path)
    assert fitted.transform(paths).shape == (2, 16)


# --------------------------------------------------------------------- bad inputs

BAD_ARRAYS = [
    (np.zeros((0, 8, 8, 3), np.uint8), ValueError, r"0 sample\(s\)"),
    (np.zeros((2, 8, 8, 3, 1), np.uint8), ValueError, r"got a 5-D array of shape \(2, 8, 8, 3, 1\)"),
    (np.zeros(5), ValueError, r"1-D array of shape \(5,\)\. Reshape your data"),
    (np.zeros((2, 8, 8, 2), np.uint8), ValueError, r"no channel axis of size 1, 3 or 4"),
    (np.zeros((2, 5, 8, 7), np.uint8), ValueError, r"no channel axis of size 1, 3 or 4"),
    (np.zeros((2, 3, 8, 4), np.uint8), ValueError, r"cannot tell whether .* channel_axis=1"),
    (np.zeros((2, 0, 8), np.uint8), ValueError, r"images must not be empty"),
    (np.full((3, 4, 4), 2.0), ValueError, r"sample 0 has values in \[2, 2\], outside value_range"),
    (np.zeros((3, 4, 4), np.complex64), ValueError, r"Complex data not supported"),
    (np.zeros((3, 4, 4), bool), TypeError, r"boolean arrays are not images"),
    (np.full((3, 4, 4), 300, np.int32), ValueError, r"sample 0 .* integer images must lie in \[0, 255\]"),
    (np.full((3, 4, 4), -1, np.int16), ValueError, r"integer images must lie in \[0, 255\]"),
    (np.zeros((3, 4)), ValueError, r"2-D data of shape \(3, 4\): .* need image_shape"),
]


@pytest.mark.parametrize("X, error, message", BAD_ARRAYS)
def test_bad_arrays(X, error, message):
    with pytest.raises(error, match=message):
        extractor().fit(X)


@pytest.mark.parametrize("bad, name", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_non_finite_floats_name_the_sample(bad, name):
    X = np.zeros((6, 4, 4), np.float32)
    X[4, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"contains {name}: sample 4 has non-finite values"):
        extractor().fit(X)


def test_non_finite_tensor_names_the_sample():
    X = torch.zeros(3, 3, 8, 8)
    X[2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"contains NaN: sample 2"):
        extractor().fit(X)


def test_out_of_range_floats_name_sample_and_range():
    X = np.zeros((300, 4, 4), np.float32)
    X[280] = 255.0
    with pytest.raises(ValueError, match=r"sample 280 has values in \[255, 255\].*value_range=\(0, 255\)"):
        extractor().fit(X)


def test_missing_file_names_index_and_path(tmp_path, uint8_images):
    paths = save_pngs(uint8_images[:3], tmp_path)
    paths[1] = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match=r"X\[1\]: image file not found: .*nope\.png"):
        extractor().fit(paths)


def test_file_deleted_after_fit_names_path(tmp_path, uint8_images):
    paths = save_pngs(uint8_images[:3], tmp_path)
    fitted = extractor().fit(paths)
    paths[2].unlink()
    with pytest.raises(FileNotFoundError, match=r"X\[2\]: image file not found: .*img002\.png"):
        fitted.transform(paths)


def test_unreadable_file_names_index_and_path(tmp_path, uint8_images):
    paths = save_pngs(uint8_images[:3], tmp_path)
    paths[2].write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match=r"X\[2\]: cannot read image file .*img002\.png"):
        features(paths)


def test_truncated_file_names_path(tmp_path, uint8_images):
    paths = save_pngs(uint8_images[:2], tmp_path)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"X\[0\]: cannot read image file .*img000\.png"):
        features(paths)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"X\[0\]: .* is a directory"):
        extractor().fit([tmp_path])


def test_mixed_list_names_index(tmp_path, uint8_images):
    paths = save_pngs(uint8_images[:2], tmp_path)
    with pytest.raises(TypeError, match=r"X\[1\] is a PIL image but X\[0\] is a file path"):
        extractor().fit([paths[0], Image.open(paths[1])])
    with pytest.raises(TypeError, match=r"X\[2\] is a int but X\[0\] is a file path"):
        extractor().fit([paths[0], paths[1], 3])


def test_empty_list():
    with pytest.raises(ValueError, match=r"Found 0 images"):
        extractor().fit([])


def test_ragged_list_of_arrays(rng):
    ragged = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), rng.integers(0, 256, (9, 8, 3), dtype=np.uint8)]
    with pytest.raises(ValueError, match=r"do not stack into one array"):
        extractor().fit(ragged)


def test_object_frames_of_pixels_are_pixels(uint8_images):
    rows = uint8_images.reshape(12, -1)
    params = {"image_shape": (20, 24, 3), "value_range": (0, 255)}
    expected = features(rows.astype(np.float64), **params)
    np.testing.assert_array_equal(features(pd.DataFrame(rows).astype(object), **params), expected)


def test_dataframe_of_several_path_columns(tmp_path, uint8_images):
    paths = [str(p) for p in save_pngs(uint8_images[:2], tmp_path)]
    with pytest.raises(ValueError, match=r"frame of 2 columns, 2 of them text \(a, b\); pass the one column"):
        extractor().fit(pd.DataFrame({"a": paths, "b": paths}))
    with pytest.raises(ValueError, match=r"\(2, 2\) array of strings; pass one column"):
        extractor().fit(np.array([paths, paths]).T)


def test_paths_in_any_one_column_container(tmp_path, uint8_images):
    """Item 6: polars and pandas frames, (n, 1) object arrays and ColumnTransformer's
    passthrough output all read as paths, with the same features as a list."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    polars = pytest.importorskip("polars")
    paths = [str(p) for p in save_pngs(uint8_images[:4], tmp_path)]
    expected = features(paths)
    frame = pd.DataFrame({"path": paths, "other": np.arange(4)})
    containers = {
        "polars": polars.DataFrame({"path": paths}),
        "pandas": frame[["path"]],
        "object array": np.array(paths, dtype=object)[:, None],
        "Path objects": np.array([Path(p) for p in paths], dtype=object)[:, None],
    }
    for name, X in containers.items():
        np.testing.assert_array_equal(features(X), expected, err_msg=name)
    pipe = make_pipeline(ColumnTransformer([("img", "passthrough", ["path"])]), extractor())
    np.testing.assert_array_equal(pipe.fit_transform(frame), expected)


def test_one_image_without_a_batch_axis_is_refused(tmp_path, uint8_images):
    """Item 1: never predictions for another count of images than given."""
    one = uint8_images[0]  # (20, 24, 3)
    on_arrays = extractor().fit(uint8_images)
    with pytest.raises(ValueError, match=r"shape \(20, 24, 3\): one image of the kind .* \(4-D batches shaped "
                                         r"\(n, 20, 24, 3\)\); pass one image with a batch axis, X\[None\]"):
        on_arrays.transform(one)
    assert on_arrays.transform(one[None]).shape == (1, 16)
    on_files = extractor().fit(save_pngs(uint8_images[:3], tmp_path))
    with pytest.raises(ValueError, match=r"could be one image or 20 grayscale images.*X\[None\]"):
        on_files.transform(one)
    with pytest.raises(ValueError, match=r"could be one image or 20 grayscale images"):
        on_files.transform(one[..., :1])  # one grayscale image with a channel axis
    np.testing.assert_array_equal(on_files.transform(one[None]), on_arrays.transform(one[None]))
    on_gray = extractor().fit(uint8_images[..., 0])
    with pytest.raises(ValueError, match=r"shape \(20, 24\): one image of the kind"):
        on_gray.transform(uint8_images[0, ..., 0])
    with pytest.raises(ValueError, match=r"could be one color image or 20 grayscale images"):
        on_gray.transform(one)
    assert on_gray.transform(uint8_images[:5, ..., 0]).shape == (5, 16)  # batches still work
    # a grayscale batch without its channel axis still reads after a fit on (n, H, W, 1)
    on_gray_4d = extractor().fit(uint8_images[..., :1])
    np.testing.assert_array_equal(on_gray_4d.transform(uint8_images[:5, ..., 0]),
                                  on_gray.transform(uint8_images[:5, ..., 0]))
    with pytest.raises(ValueError, match=r"shape \(20, 24, 1\): one image of the kind"):
        on_gray_4d.transform(uint8_images[0, ..., :1])


def test_decompression_bomb_names_index_and_path(tmp_path, uint8_images, monkeypatch):
    """Item 5: Pillow's DecompressionBombError becomes a ValueError naming the file."""
    paths = save_pngs(uint8_images[:3], tmp_path)
    big = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # 3000 x 3000 > 2x the limit
    with pytest.raises(ValueError, match=r"X\[3\]: image file '.*big\.png' is too large to decode safely"):
        features([*paths, big])


def test_single_image_and_single_path(tmp_path, uint8_images):
    path = save_pngs(uint8_images[:1], tmp_path)[0]
    with pytest.raises(TypeError, match=r"single path; pass a list"):
        extractor().fit(str(path))
    with pytest.raises(TypeError, match=r"single PIL image; pass a list"):
        extractor().fit(Image.open(path))


def test_unsupported_type():
    with pytest.raises(TypeError, match=r"unsupported input type dict"):
        extractor().fit({"a": 1})


def test_sparse_is_rejected():
    with pytest.raises(TypeError, match=r"[Ss]parse"):
        extractor(image_shape=(2, 2)).fit(sparse.csr_matrix(np.eye(4)))


def test_image_shape_that_does_not_fit():
    with pytest.raises(ValueError, match=r"rows of 10 values cannot be reshaped to image_shape=\(3, 3\)"):
        extractor(image_shape=(3, 3)).fit(np.zeros((4, 10)))


def test_channels_differ_from_fit(uint8_images):
    fitted = extractor().fit(uint8_images[..., 0])
    with pytest.raises(ValueError, match=r"X has 3-channel images, but PretrainedFeatureExtractor was fitted on 1-channel"):
        fitted.transform(uint8_images)


def test_rows_after_fitting_on_images(uint8_images):
    fitted = extractor(image_shape=(20, 24, 3)).fit(uint8_images)
    rows = uint8_images.reshape(len(uint8_images), -1)
    assert fitted.transform(rows).shape == (12, 16)
    fitted_on_rows = extractor(image_shape=(20, 24, 3)).fit(rows)
    with pytest.raises(ValueError, match=r"fitted on 2-D rows of 1440 pixel values"):
        fitted_on_rows.transform(uint8_images)
    with pytest.raises(ValueError, match=r"X has 10 features, but PretrainedFeatureExtractor is expecting 1440"):
        fitted_on_rows.transform(np.zeros((2, 10)))
