"""Text inputs: validated once, tokenized batch by batch.

A column of text arrives as a list or tuple, a 1-D (or ``(n, 1)``) array of
strings, a Series of any dataframe library, or a one-column frame. Every item
must be a string; empty strings are allowed (they embed as the model embeds an
empty text). Tokenization happens per batch, padded to the batch's longest
text and truncated at ``max_length``, on the loader's reader thread so that it
overlaps the forward pass.
"""

from __future__ import annotations

import hashlib
import math

import narwhals.stable.v1 as nw
import numpy as np
import torch

from .sources import workers


def _items(X, name: str) -> list:
    native = nw.from_native(X, pass_through=True, eager_only=True, allow_series=True)
    if isinstance(native, nw.DataFrame):
        if len(native.columns) != 1:
            raise ValueError(
                f"X is a frame of {len(native.columns)} columns; {name} takes one column of texts, "
                f"e.g. X[[{str(native.columns[0])!r}]]"
            )
        native = native.get_column(native.columns[0])
    if isinstance(native, nw.Series):
        return native.to_list()
    if isinstance(X, str):
        raise TypeError("X is a single string; pass a list of texts, e.g. [text]")
    if isinstance(X, (list, tuple)):
        return list(X)
    if not torch.is_tensor(X) and hasattr(X, "__array__"):  # numpy arrays, pandas Index...
        column = np.asarray(X)
        if column.ndim == 2 and column.shape[1] == 1:
            column = column[:, 0]
        if column.ndim == 1 and column.dtype.kind in "OSUT":
            return column.tolist()
    shape = getattr(X, "shape", None)
    what = f"an array of shape {tuple(shape)} and dtype {X.dtype}" if shape is not None else type(X).__name__
    raise TypeError(
        f"the backbone of {name} is a text model: X must be strings (a list, a 1-D array, a Series "
        f"or a one-column frame), got {what}; for images use an image backbone"
    )


def validate_texts(X, name: str, what: str = "X") -> list[str]:
    """The texts of ``X`` (called ``what`` in messages, for ``name``); an error naming the
    first bad item's index otherwise."""
    texts = _items(X, name)
    if not texts:
        raise ValueError("Found 0 texts (an empty input) while a minimum of 1 is required.")
    for i, item in enumerate(texts):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{what}[{i}] is not valid Unicode text ({exc.reason} at {exc.start})") from None
            continue
        if item is None or (isinstance(item, float) and math.isnan(item)) or type(item).__name__ == "NAType":
            raise ValueError(f"{what}[{i}] is missing ({item!r}); fill or drop missing texts first")
        raise TypeError(f"{what}[{i}] is a {type(item).__name__}, not a string; texts must be str")
    return texts


class TextSource:
    """Validated texts read as tokenized batches ``{"input_ids", "attention_mask"}``.

    Parameters
    ----------
    texts : list of str
    tokenizer : callable
        A Hugging Face tokenizer.
    max_length : int
        Tokens kept per text.
    """

    kind = "text"
    decoded_digests = None  # texts are in memory: what was hashed is what is read

    def __init__(self, texts, tokenizer, max_length: int):
        self.items = texts
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def __len__(self) -> int:
        return len(self.items)

    def read(self, indices) -> dict:
        batch = self.tokenizer([self.items[i] for i in np.asarray(indices)], padding="longest", truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"].to(torch.int64)}

    def keyed(self) -> "TextSource":
        """This source: what :meth:`digests` hashes is exactly what :meth:`read` reads."""
        return self

    def digests(self) -> list:
        """A SHA-256 (16 bytes) per text of its UTF-8 bytes."""
        def digest(text):
            return hashlib.sha256(b"text:" + text.encode("utf-8")).digest()[:16]

        return list(workers().map(digest, self.items)) if len(self.items) > 1000 else [digest(t) for t in self.items]
