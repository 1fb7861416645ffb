"""Labelled image folders: reading torchvision's ImageFolder layout, writing one, and the
errors a user with a real folder meets."""

import os

import numpy as np
import pytest
from PIL import Image

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_digits_images, load_image_folder, make_image_folder
from tests.conftest import TINY


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def test_digits_images_are_the_digits_scaled_to_uint8():
    from sklearn.datasets import load_digits

    digits, images = load_digits(), load_digits_images()
    assert images.images.dtype == np.uint8 and images.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images.target, digits.target)
    np.testing.assert_allclose(images.images / 255 * 16, digits.images, atol=16 / 255 / 2 + 1e-9)
    assert images.target_names.tolist() == [str(d) for d in range(10)]


def test_a_written_folder_reads_back_with_the_same_images_and_labels(tmp_path):
    digits = load_digits_images()
    folder = make_image_folder(tmp_path / "digits", digits.images[:40], digits.target[:40], digits.target_names)
    data = load_image_folder(folder)
    assert data.target_names.tolist() == sorted(set(str(t) for t in digits.target[:40]))
    # sorted by class, then by file name (the input index): ImageFolder's order
    order = np.argsort(digits.target[:40], kind="stable")
    np.testing.assert_array_equal(data.target_names[data.target], digits.target[:40][order].astype(str))
    decoded = np.stack([np.asarray(Image.open(p)) for p in data.paths])
    np.testing.assert_array_equal(decoded, digits.images[:40][order])  # PNG is lossless
    assert data.folder == str(folder.resolve())


def test_the_paths_go_straight_into_an_estimator(tmp_path):
    digits = load_digits_images()
    data = load_image_folder(make_image_folder(tmp_path / "d", digits.images[:6], digits.target[:6]))
    extractor = PretrainedFeatureExtractor(TINY, input_size=16).fit(data.paths)
    order = np.argsort(digits.target[:6], kind="stable")
    np.testing.assert_allclose(extractor.transform(data.paths), extractor.transform(digits.images[:6][order]),
                               atol=1e-5)


def test_nested_hidden_and_upper_case_files(tmp_path):
    _png(tmp_path / "cat" / "a.PNG")
    _png(tmp_path / "cat" / "more" / "b.png")
    _png(tmp_path / "cat" / ".hidden.png")
    _png(tmp_path / "dog" / "c.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    _png(tmp_path / ".ipynb_checkpoints" / "x.png")
    data = load_image_folder(tmp_path)
    assert data.target_names.tolist() == ["cat", "dog"]
    assert [os.path.relpath(p, tmp_path) for p in data.paths] == ["cat/a.PNG", "cat/more/b.png", "dog/c.png"]
    assert data.target.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(tmp_path, extensions=("jpg",))


def test_extensions_select_files(tmp_path):
    _png(tmp_path / "a" / "x.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a" / "y.bmp")
    _png(tmp_path / "b" / "z.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "b" / "w.bmp")
    data = load_image_folder(tmp_path, extensions=(".bmp",))
    assert [p.rsplit("/", 1)[1] for p in data.paths] == ["y.bmp", "w.bmp"]


@pytest.mark.parametrize("layout, error, match", [
    ("missing", FileNotFoundError, "image folder not found"),
    ("file", NotADirectoryError, "is a file"),
    ("flat", ValueError, r"2 image\(s\) directly in .* belong to no class, e.g. 'a.png'"),
    ("no_classes", ValueError, "has no class sub-folders"),
    ("empty_class", ValueError, r"class folder '.*/dog' holds no images"),
])
def test_malformed_folders_are_named(tmp_path, layout, error, match):
    folder = tmp_path / "data"
    if layout == "file":
        folder.write_text("x")
    elif layout == "flat":
        _png(folder / "a.png")
        _png(folder / "b.png")
        _png(folder / "cat" / "c.png")
    elif layout == "no_classes":
        folder.mkdir()
    elif layout == "empty_class":
        _png(folder / "cat" / "c.png")
        (folder / "dog").mkdir()
        (folder / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(error, match=match):
        load_image_folder(folder)


def test_make_image_folder_never_overwrites_and_checks_its_input(tmp_path):
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        make_image_folder(tmp_path / "full", images, [0, 1])
    assert (tmp_path / "full" / "keep.txt").read_text() == "precious"
    with pytest.raises(ValueError, match="uint8"):
        make_image_folder(tmp_path / "a", images.astype(float), [0, 1])
    with pytest.raises(ValueError, match="one entry per image"):
        make_image_folder(tmp_path / "b", images, [0])
    with pytest.raises(ValueError, match="cannot be a folder name"):
        make_image_folder(tmp_path / "c", images, ["ok", "../escape"])
    assert not (tmp_path / "escape").exists()
    rgb = make_image_folder(tmp_path / "rgb", np.full((2, 4, 4, 3), 7, dtype=np.uint8), ["x", "y"], format="bmp")
    assert sorted(p.name for p in (rgb / "x").iterdir()) == ["0.bmp"]
    assert np.asarray(Image.open(rgb / "y" / "1.bmp")).tolist() == np.full((4, 4, 3), 7).tolist()


def test_make_image_folder_checks_everything_before_writing(tmp_path):
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="format must be 'png', 'jpeg' or 'bmp', got 'xyz'"):
        make_image_folder(tmp_path / "a", images, [0, 1], format="xyz")
    with pytest.raises(ValueError, match=r"target must hold indices in \[0, 2\)"):
        make_image_folder(tmp_path / "b", images, [0, 5], ["x", "y"])
    with pytest.raises(ValueError, match="no images"):
        make_image_folder(tmp_path / "c", images[:0], [])
    assert not any((tmp_path / name).exists() for name in "abc")
