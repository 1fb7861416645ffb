"""What each ``sktransfer`` command does (imported once a command runs, with torch)."""

from __future__ import annotations

import io
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from ..data.files import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from ._io import (
    MODEL_SUFFIXES,
    TABLE_SUFFIXES,
    UsageError,
    check_output,
    require,
    load_model,
    read_images,
    read_texts,
    save_model,
    unreadable,
    write_csv,
    write_table,
)

from ..data.launch import is_main_process as main_process

def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the command was called wrongly: a :class:`UsageError`, or a
    parameter value the estimator refused (scikit-learn's error, looked up only where a
    command loaded scikit-learn: ``backbones`` does not, and starts faster for it)."""
    validation = sys.modules.get("sklearn.utils._param_validation")
    return isinstance(exc, UsageError) or (validation is not None and isinstance(exc, validation.InvalidParameterError))


def _say(args, *lines) -> None:
    # progress and notes go to standard error: standard output holds only results
    if not args.quiet:
        print(*lines, sep="\n", file=sys.stderr, flush=True)


class _Log(io.TextIOBase):
    """``stream`` without the colour codes of skorch's epoch table, unless a terminal shows them."""

    _COLOUR = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, stream):
        self.stream = stream
        self.plain = not stream.isatty()

    def write(self, text: str) -> int:
        self.stream.write(self._COLOUR.sub("", text) if self.plain else text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding


def _verbose(args) -> int:
    """0 with --quiet; else the epoch table, plus progress bars when a person watches."""
    return 0 if args.quiet else (2 if sys.stderr.isatty() else 1)


def _modality(backbone: str) -> str:
    from ..backbones._registry import backbone_modality

    try:
        return backbone_modality(backbone)
    except ValueError as exc:  # unknown backbone: the command was called wrongly
        raise UsageError(str(exc).replace("list_backbones() shows the registered names",
                                          "'sktransfer backbones' lists them")) from None


def _check_plots(folder) -> Path:
    require("matplotlib", "--plots", "plots")
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--plots {str(folder)!r} is a file, not a folder")
    return folder  # created when the plots are saved


#: The files a modality reads from folders and lists, and what one input is called.
_FILES = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}
_NOUNS = {"image": "image", "text": "text", "audio": "sound file"}


def _read(args, modality: str) -> tuple[list[str], dict]:
    """The inputs, and the column that identifies each row of the output."""
    if modality == "text":
        texts, name, numbers = read_texts(args.input, args.column)
        return texts, {name: np.array(numbers)}
    paths = read_images(args.input, args.column, _FILES[modality])
    paths = [paths[i] for i in _readable(args, paths, args.input, modality)]
    return paths, {"path": np.array(paths, dtype=object)}


def _readable(args, paths, where, modality: str) -> list[int]:
    """The positions of the files of ``paths`` (from ``where``) that can be read. The others
    stop the command with one line each, or with ``--skip-bad-images`` are left out (said
    on standard error)."""
    bad = unreadable(paths, modality)
    if not bad:
        return list(range(len(paths)))
    what = f"{len(bad)} of the {len(paths)} files in {str(where)!r} cannot be read"
    lines = [line for _, line in bad]
    if not args.skip_bad_images:
        raise ValueError("\n".join([f"{what} (--skip-bad-images leaves them out):", *lines]))
    if len(bad) == len(paths):
        raise ValueError("\n".join([f"none of the {len(paths)} files in {str(where)!r} can be read:", *lines]))
    _say(args, f"skipping the {what.replace(' cannot', ' that cannot')}:", *(f"  {line}" for line in lines))
    skipped = {i for i, _ in bad}
    return [i for i in range(len(paths)) if i not in skipped]


def _labelled(args, folder, modality: str):
    """The readable files of a labelled ``folder`` and their class names."""
    from ..datasets import load_image_folder

    data = load_image_folder(folder, _FILES[modality])
    keep = _readable(args, data.paths, data.folder, modality)
    return [data.paths[i] for i in keep], data.target_names[data.target[keep]]


def _plural(n: int, modality: str) -> str:
    what = _NOUNS.get(modality, modality)
    return f"{n} {what}{'' if n == 1 else 's'}"


# ------------------------------------------------------------------------ commands


def backbones(args) -> None:
    """Print the catalog as a table, a row at a time (building each takes a moment)."""
    from ..backbones._catalog import COLUMNS, describe_backbones

    widths = {"name": 40, "provider": 18, "modality": 8, "features": 8, "input": 10, "weights": 8}
    line = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
    print(line.rstrip())
    found = False
    for row in describe_backbones(args.pattern):
        found = True
        print("  ".join(str(row[c]).ljust(widths[c]) for c in COLUMNS).rstrip(), flush=True)
    if not found:
        raise UsageError(f"no backbone matches {args.pattern!r}")


def extract(args) -> None:
    """Features of INPUT with a frozen backbone, written as a table."""
    from ..extractor import PretrainedFeatureExtractor

    modality = _modality(args.backbone)
    output = check_output(args.output, TABLE_SUFFIXES, args.overwrite)
    items, ids = _read(args, modality)
    _say(args, f"extracting {args.backbone} features of {_plural(len(items), modality)}")
    extractor = PretrainedFeatureExtractor(args.backbone, weights=args.weights, input_size=args.input_size,
                                           batch_size=args.batch_size, device=args.device,
                                           verbose=int(not args.quiet and sys.stderr.isatty()))
    features = extractor.fit_transform(items)
    columns = dict(ids)
    columns.update(zip(extractor.get_feature_names_out(), features.T))
    write_table(output, columns)
    _say(args, f"wrote {features.shape[0]} x {features.shape[1]} features to {output}")


def _report(model, y_true, y_pred) -> None:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    out = sys.stdout  # looked up now: a process other than the main one under torchrun silences it

    labels = model.classes_
    names = [str(c) for c in labels]
    print(f"accuracy: {accuracy_score(y_true, y_pred):.4f} on {len(y_true)} images", file=out)
    print(classification_report(y_true, y_pred, labels=labels, target_names=names, digits=4,
                                zero_division=0), file=out)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    width = max(max(map(len, names)), len(str(matrix.max())), 4)
    print("confusion matrix (rows: true class, columns: predicted)", file=out)
    print(" " * width + "  " + "  ".join(n.rjust(width) for n in names), file=out)
    for name, row in zip(names, matrix):
        print(name.rjust(width) + "  " + "  ".join(str(v).rjust(width) for v in row), file=out)


def _figures(folder: Path):
    """pyplot, drawing off-screen, and ``folder`` created."""
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path) -> Path:
    if main_process():  # under torchrun, one process writes
        figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def _save_confusion_matrix(folder: Path, y_true, y_pred, labels) -> Path:
    plt = _figures(folder)
    from ..display import plot_confusion_matrix

    display = plot_confusion_matrix(y_true, y_pred, labels=labels,
                                    title=f"accuracy {np.mean(np.asarray(y_true) == np.asarray(y_pred)):.3f} on "
                                          f"{len(y_true)} images (rows: true class)")
    return _save(plt, display.figure_, folder / "confusion_matrix.png")


def _save_interpretation(folder: Path, model, paths, y_true, proba) -> list:
    """misclassified.png (the most confident mistakes) and saliency.png (Grad-CAM maps of
    those images for the class predicted; of the first images when there is no mistake)."""
    plt = _figures(folder)
    from ..display import MisclassifiedDisplay, SaliencyDisplay

    wrong = MisclassifiedDisplay.from_predictions(y_true, proba, paths, classes=model.classes_)
    saved = [_save(plt, wrong.figure_, folder / "misclassified.png")]
    shown = list(wrong.indices) if len(wrong.indices) else list(range(min(9, len(paths))))
    saliency = SaliencyDisplay.from_estimator(model, [paths[i] for i in shown], np.asarray(y_true)[shown])
    saved.append(_save(plt, saliency.figure_, folder / "saliency.png"))
    return saved


def _new_model(args):
    """The classifier ``fit`` trains from the pretrained weights."""
    from ..classifier import FineTunedClassifier

    if args.backbone is None:
        raise UsageError("fit needs -b/--backbone BACKBONE (or --resume MODEL)")
    modality = _modality(args.backbone)
    if modality not in _FILES:
        raise UsageError(f"'sktransfer fit' trains on folders of image or sound files; {args.backbone!r} is a "
                         f"{modality} backbone")
    return FineTunedClassifier(
        args.backbone, weights=args.weights, freeze_depth=0 if args.freeze_depth is None else args.freeze_depth,
        head_init=args.head_init or "auto", input_size=args.input_size,
    )


def _resumed(args):
    """The saved classifier ``--resume`` continues, refusing options that would change its network."""
    model = _classifier(args.resume)
    kept = {"--backbone": (args.backbone, model.backbone), "--input-size": (args.input_size, model.input_size),
            "--freeze-depth": (args.freeze_depth, model.freeze_depth), "--head-init": (args.head_init, model.head_init)}
    changed = [flag for flag, (given, saved) in kept.items() if given is not None and given != saved]
    if args.weights != "DEFAULT":  # any weights given (none included): the saved ones are kept
        changed.append("--weights")
    if changed:
        raise UsageError(f"--resume continues {str(args.resume)!r} with its own network; {', '.join(changed)} "
                         "cannot change (leave them out, or train a new model without --resume)")
    return model


def _check_before_data(model) -> None:
    """Refuse option values before any data is read: each parameter on its own, then the
    freeze depth against the backbone's stages (its architecture alone, built without
    weights)."""
    from ..backbones._catalog import _build_shape_only
    from ..nn.freezing import resolve_freeze_depth

    model._check_params()
    try:
        resolve_freeze_depth(model.freeze_depth, _build_shape_only(model.backbone).stage_names)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def fit(args) -> None:
    """Fine-tune on a labelled folder, report on a held-out split or folder, save."""
    from sklearn.model_selection import train_test_split

    output = check_output(args.output, MODEL_SUFFIXES, args.overwrite)
    plots = _check_plots(args.plots) if args.plots else None
    model = _resumed(args) if args.resume else _new_model(args)
    model.set_params(
        max_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, device=args.device, precision=args.precision,
        augment=None if args.augment == "none" else args.augment, random_state=args.random_state,
        early_stopping=args.early_stopping, warm_start=bool(args.resume), verbose=_verbose(args),
    )
    given = {name: getattr(args, name) for name in ("mixup_alpha", "cutmix_alpha", "ema_decay")}
    model.set_params(**{name: value for name, value in given.items() if value is not None})
    _check_before_data(model)
    modality = model._modality().name
    X, y = _labelled(args, args.folder, modality)
    names, sizes = np.unique(y, return_counts=True)
    counts = dict(zip(names.tolist(), sizes.tolist()))
    if len(counts) < 2:
        raise ValueError(f"{args.folder!r} has one class ({next(iter(counts))!r}); a classifier needs two or more")
    val = 0.2 if args.val is None and args.val_folder is None else args.val
    if args.val_folder is not None:
        X_train, y_train = X, y
        X_val, y_val = _labelled(args, args.val_folder, modality)
        unknown = sorted(set(y_val.tolist()) - set(counts))
        if unknown:
            raise ValueError(f"classes {unknown} of --val-folder {args.val_folder!r} are not classes of "
                             f"{args.folder!r} ({sorted(counts)})")
    elif val:
        smallest = min(counts, key=counts.get)
        if counts[smallest] < 2:
            raise ValueError(f"class {smallest!r} has {counts[smallest]} image: a held-out split needs at "
                             "least 2 per class (add images, or pass --val 0)")
        held_out = math.ceil(val * len(y))  # as train_test_split counts a fraction
        if held_out < len(counts):
            raise ValueError(f"--val {val} holds out {held_out} of {len(y)} images, fewer than the "
                             f"{len(counts)} classes; raise it to at least {len(counts) / len(y):.3g}")
        X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=val, stratify=y,
                                                          random_state=args.random_state)
    else:
        X_train, y_train, X_val, y_val = X, y, None, None
    _say(args, f"{len(X)} images in {len(counts)} classes: " + ", ".join(f"{k} ({v})" for k, v in counts.items()),
         f"{'continuing' if args.resume else 'fine-tuning'} {model.backbone} on {len(X_train)} images"
         + (f", {len(X_val)} held out" if X_val is not None else ""))
    # the epoch table is a log: standard error, like the rest of the progress
    stdout, sys.stdout = sys.stdout, _Log(sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="fit was interrupted")
            model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    finally:
        sys.stdout = stdout
    if getattr(model.net_, "interrupted_", False):  # Ctrl-C: the model is unfinished, not saved
        raise KeyboardInterrupt
    if X_val is not None:
        y_pred = model.predict(X_val)
        _report(model, y_val, y_pred)
    save_model(model, output)
    _say(args, f"saved the model to {output}")
    if plots is not None:
        plt = _figures(plots)
        from ..display import TrainingCurveDisplay

        saved = []
        if model.n_iter_:  # freeze_depth="all" solves a probe: no epochs, no curve
            curve = TrainingCurveDisplay.from_estimator(model)
            saved.append(_save(plt, curve.figure_, plots / "training_curve.png"))
        if X_val is not None:
            saved.append(_save_confusion_matrix(plots, y_val, y_pred, model.classes_))
        if saved:
            _say(args, "saved " + ", ".join(map(str, saved)))


def _classifier(path, needs="this command"):
    model = load_model(path)
    if not hasattr(model, "predict_proba") or getattr(model, "_target_type", "") == "multilabel-indicator":
        raise UsageError(f"{needs} needs a model that predicts one class per input; {str(path)!r} holds a "
                         f"{type(model).__name__} that does not (a regressor, or a multi-label classifier)")
    return model


def _top_k(model, proba: np.ndarray, k: int) -> dict:
    """Columns ``class_1, proba_1, ..., class_k, proba_k``: each row's ``k`` most probable
    classes, the most probable first (ties: the class listed first in ``classes_``)."""
    best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    columns = {}
    for rank in range(k):
        columns[f"class_{rank + 1}"] = model.classes_[best[:, rank]]
        columns[f"proba_{rank + 1}"] = np.take_along_axis(proba, best[:, rank:rank + 1], axis=1)[:, 0]
    return columns


def _predictor(path):
    model = load_model(path)
    if not hasattr(model, "predict") or not hasattr(model, "_outputs"):
        raise UsageError(f"{str(path)!r} holds a {type(model).__name__}, which does not predict")
    return model


def predict(args) -> None:
    """Predictions of INPUT (classes and class probabilities, labels, or values), as CSV
    (standard output) or a file."""
    output = check_output(args.output, (".csv", ".parquet"), args.overwrite) if args.output else None
    model = _classifier(args.model, "--top-k") if args.top_k is not None else _predictor(args.model)
    if args.top_k is not None and args.top_k > len(model.classes_):
        raise UsageError(f"--top-k {args.top_k} asks for more classes than the model's {len(model.classes_)}")
    model.set_params(**_runtime_params(model, args))
    modality = model._spec.modality
    items, ids = _read(args, modality)
    _say(args, f"predicting {_plural(len(items), modality)} with {args.model}")
    outputs, task = model._outputs(items), model._task()  # one pass gives predictions and probabilities
    columns = dict(ids)
    if args.top_k is not None:
        columns.update(_top_k(model, task.predict_proba(outputs), args.top_k))
    elif hasattr(task, "predict_proba"):
        classes, proba = model.classes_, task.predict_proba(outputs)
        predicted = task.predict(outputs, classes)
        if predicted.ndim == 1:
            columns["prediction"] = predicted
        else:  # multi-label: one column per label, 0 or 1
            columns.update({f"label_{c}": predicted[:, i] for i, c in enumerate(classes)})
        columns.update({f"proba_{c}": proba[:, i] for i, c in enumerate(classes)})
    else:  # a regressor: one column per target
        predicted = task.predict(outputs, model._target_scaling)
        columns.update({"prediction": predicted} if predicted.ndim == 1 else
                       {f"prediction_{i}": predicted[:, i] for i in range(predicted.shape[1])})
    if output is None:
        write_csv(sys.stdout, columns)
    else:
        write_table(output, columns)
        _say(args, f"wrote {len(items)} predictions to {output}")


def _runtime_params(model, args) -> dict:
    """The settings the user chose for this run: machine-dependent ones and test-time
    augmentation (not training ones)."""
    params = {}
    names = model.get_params(deep=False)
    if "device" in names:
        params["device"] = args.device
    if "batch_size" in names and args.batch_size is not None:
        params["batch_size"] = args.batch_size
    if "verbose" in names:
        params["verbose"] = int(not args.quiet and sys.stderr.isatty())
    if "tta" in names and getattr(args, "tta", None) is not None:
        params["tta"] = None if args.tta == "none" else args.tta
    return params


def evaluate(args) -> None:
    """Accuracy, classification report and confusion matrix on a labelled folder."""

    plots = _check_plots(args.plots) if args.plots else None
    model = _classifier(args.model)
    model.set_params(**_runtime_params(model, args))
    modality = model._spec.modality
    if modality not in _FILES:
        raise UsageError(f"'sktransfer evaluate' reads folders of image or sound files; {str(args.model)!r} is a "
                         f"{modality} model")
    paths, names = _labelled(args, args.folder, modality)
    # a model trained from a folder knows its classes by name; one trained in Python
    # on ints or other labels is matched by their text
    by_name = {str(c): c for c in model.classes_}
    unknown = sorted(set(names.tolist()) - set(by_name))
    if unknown:
        raise ValueError(f"classes {unknown} of {args.folder!r} are not classes of the model ({sorted(by_name)})")
    y_true = np.array([by_name[n] for n in names.tolist()])
    _say(args, f"evaluating {args.model} on {len(paths)} images of {args.folder}")
    outputs, task = model._outputs(paths), model._task()  # one pass gives predictions and probabilities
    y_pred = task.predict(outputs, model.classes_)
    _report(model, y_true, y_pred)
    if plots is not None:
        saved = [_save_confusion_matrix(plots, y_true, y_pred, model.classes_)]
        if modality == "image":
            saved += _save_interpretation(plots, model, paths, y_true, task.predict_proba(outputs))
        _say(args, "saved " + ", ".join(map(str, saved)))


def export(args) -> None:
    """A saved model as a serving artifact (ONNX or torch.export)."""
    from ..exporting import export as export_model
    from ..persistence.export import SUFFIXES

    output = check_output(args.output, SUFFIXES, args.overwrite)
    if output.suffix.lower() == ".onnx":
        require("onnx", "writing .onnx files", "export")
    model = load_model(args.model)
    _say(args, f"exporting {args.model} ({type(model).__name__}, {model.backbone}) to {output}")
    try:
        export_model(model, output)
    except (TypeError, ValueError) as exc:  # a model the format cannot hold: the request was wrong
        raise UsageError(str(exc)) from None
    _say(args, f"wrote {output}")


def demo(args) -> None:
    """The README's main job: raw pixels vs frozen features vs fine-tuning on digits."""
    from ._demo import run_demo

    run_demo(Path(args.output_dir).expanduser(), epochs=args.epochs, device=args.device,
             batch_size=args.batch_size, say=lambda *lines: _say(args, *lines))


COMMANDS = {"backbones": backbones, "extract": extract, "fit": fit, "predict": predict,
            "evaluate": evaluate, "export": export, "demo": demo}
