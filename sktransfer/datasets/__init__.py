"""Real data that needs no download at run time, and labelled image folders.

- :func:`load_image_folder`: a folder with one sub-folder of images per class.
- :func:`load_digits_images` and :func:`make_image_folder`: scikit-learn's digits as
  images, and writing any labelled images as such a folder.
- :func:`load_fashion_mnist`: Fashion-MNIST from Debian's package.
- :func:`load_library_docstrings`: texts labelled by the library they document.
"""

from ..data.files import IMAGE_EXTENSIONS
from ._docstrings import DOCSTRING_SOURCES, load_library_docstrings
from ._fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, load_fashion_mnist
from ._images import load_digits_images, load_image_folder, make_image_folder

__all__ = [
    "DOCSTRING_SOURCES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "load_digits_images",
    "load_fashion_mnist",
    "load_image_folder",
    "load_library_docstrings",
    "make_image_folder",
]
