"""What the command line reads (images, path lists, texts, models) and writes (tables, models)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..data.files import IMAGE_EXTENSIONS, find_images

#: Output formats of ``extract`` and ``predict``.
TABLE_SUFFIXES = (".npy", ".csv", ".parquet")
#: Model files the command line reads and writes: both hold no code.
MODEL_SUFFIXES = (".safetensors", ".skops")


class UsageError(Exception):
    """The command was called wrongly (exit status 2)."""


def _csv_column(path: Path, column: str) -> list[tuple[int, str]]:
    """``(row number, value)`` of the non-blank values of ``column`` (rows from 1, after the header)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ValueError(f"{str(path)!r} has no column {column!r} (its columns: {reader.fieldnames})")
        return [(i, row[column]) for i, row in enumerate(reader, 1) if (row[column] or "").strip()]


def _lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, line)`` of the non-blank lines (numbered from 1)."""
    with open(path, encoding="utf-8") as f:
        return [(i, line.rstrip("\r\n")) for i, line in enumerate(f, 1) if line.strip()]


def _column_of_csv(path: Path, column, default: str) -> str:
    """The column to read from ``path``; naming one for an input without columns is a usage error."""
    if path.suffix.lower() == ".csv":
        return column or default
    if column is not None:
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'plain'} file"
        raise UsageError(f"--column names a column of a .csv input, but {str(path)!r} is {kind}")
    return default


def read_images(path, column: Optional[str] = None, extensions=IMAGE_EXTENSIONS) -> list[str]:
    """Image (or, with ``extensions``, sound) file paths from a folder (every one below it),
    one such file, a text file with one path per line, or a CSV file's ``column``
    (default ``"path"``). Relative paths in a list are taken from the list's folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"input not found: {str(path)!r}")
    column = _column_of_csv(path, column, "path")
    if path.is_dir():
        found = find_images(path, extensions)
        if not found:
            raise ValueError(f"no files to read in {str(path)!r} (looked for {', '.join(extensions)})")
        return found
    suffix = path.suffix.lower()
    if suffix in extensions:
        return [str(path)]
    if suffix == ".csv":
        listed = [value for _, value in _csv_column(path, column)]
    elif suffix in (".txt", ".lst", ".list"):
        listed = [line for _, line in _lines(path)]
    else:
        raise UsageError(f"{str(path)!r} is neither a folder, an image, a .txt list of paths nor a .csv file")
    if not listed:
        raise ValueError(f"{str(path)!r} lists no image paths")
    return [str(path.parent / p) if not os.path.isabs(p) else p for p in listed]


def read_texts(path, column: Optional[str] = None) -> tuple[list[str], str, list[int]]:
    """Texts from a text file (one per line, blank lines skipped) or a CSV file's ``column``
    (default ``"text"``), with what identifies each: ``("line", line numbers)`` or
    ``("row", row numbers)``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {str(path)!r}" if not path.exists()
                                else f"{str(path)!r} is a folder; texts come from a .txt or .csv file")
    column = _column_of_csv(path, column, "text")
    is_csv = path.suffix.lower() == ".csv"
    numbered = _csv_column(path, column) if is_csv else _lines(path)
    if not numbered:
        raise ValueError(f"{str(path)!r} holds no texts")
    return [text for _, text in numbered], "row" if is_csv else "line", [i for i, _ in numbered]


def unreadable(paths, modality: str = "image") -> list[tuple[int, str]]:
    """``(position, line)`` for each file of ``paths`` that cannot be read as ``modality``
    ("image" or "audio"), the line naming its path and why. Every file is decoded
    once, on the reading threads."""
    from ..data.audio import decode_sound
    from ..data.decoding import decode_file, read_file
    from ..data.sources import workers

    def problem(index):
        path = paths[index]
        try:
            if modality == "audio":
                decode_sound(read_file(path, index, "sound"), path, index)
            else:
                decode_file(path, index)
        except (ValueError, OSError) as exc:
            # the decoders name the input's position; here the path alone names the file
            return str(exc).removeprefix(f"X[{index}]: ")
        return None

    found = workers().map(problem, range(len(paths)))
    return [(i, line) for i, line in enumerate(found) if line is not None]


def check_output(path, suffixes, overwrite: bool) -> Path:
    """Refuse, before any work, an output the command could not write or would clobber."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"cannot write {str(path)!r}: the file name must end in one of {', '.join(suffixes)}")
    if path.exists() and not overwrite:
        raise UsageError(f"{str(path)!r} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.suffix.lower() == ".parquet":
        require("pyarrow", "writing .parquet files", "parquet")
    if path.suffix.lower() == ".skops":
        require("skops", "writing .skops files", "skops")
    return path


def require(module: str, what: str, extra: str) -> None:
    """Refuse, before any work, what needs an optional package that is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{what} needs {module}: pip install 'sktransfer[{extra}]'")


def write_table(path: Path, columns: dict) -> None:
    """Write ``{name: 1-D array}`` (the first column identifying the rows) atomically, as
    CSV or Parquet, or in ``.npy`` the other columns as one float32 matrix."""
    from ..data.launch import is_main_process
    from ..persistence.atomic import atomic_path

    if not is_main_process():  # under torchrun every process computed the same table; one writes
        return
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, np.column_stack(list(columns.values())[1:]).astype(np.float32))
        elif suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                write_csv(f, columns)


def write_csv(f, columns: dict) -> None:
    """Write ``{name: 1-D array}`` as CSV to an open text stream (a file, standard output)."""
    writer = csv.writer(f)
    writer.writerow(columns)
    for row in zip(*columns.values()):
        writer.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])


def load_model(path):
    """A model saved by ``sktransfer.save`` (``.safetensors``) or skops (``.skops``).

    Pickles (``.joblib``, ``.pkl``) are refused: loading one runs whatever code it holds.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        hint = " (a pickle runs code when loaded)" if suffix in (".pkl", ".pickle", ".joblib") else ""
        raise UsageError(f"the command line loads only {' and '.join(MODEL_SUFFIXES)} model files{hint}, "
                         f"not {str(path)!r}; save with sktransfer.save(model, 'model.safetensors')")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {str(path)!r}")
    try:
        if suffix == ".skops":
            require("skops", "reading .skops files", "skops")
            import skops.io

            from ..saving import SKOPS_TRUSTED_TYPES

            return skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
        from ..saving import load

        return load(path)
    except UsageError:
        raise
    except Exception as exc:  # name the file: "File is not a zip file" alone says nothing
        raise ValueError(f"cannot read model {str(path)!r}: {exc}") from exc


def save_model(model, path: Path) -> None:
    """Write ``model`` in the safe format ``path``'s suffix names (atomically)."""
    if path.suffix.lower() == ".skops":
        import skops.io

        from ..data.launch import is_main_process
        from ..persistence.atomic import atomic_path

        if not is_main_process():  # as sktransfer.save: under torchrun, one process writes
            return
        with atomic_path(path) as tmp:
            skops.io.dump(model, tmp)
    else:
        from ..saving import save

        save(model, path)
