"""The ``sktransfer`` command line: from a folder of images to a saved, evaluated model.

``sktransfer backbones``, ``extract``, ``fit``, ``predict``, ``evaluate``, ``export`` and ``demo``.
This module imports only the standard library: ``--help`` answers at once, and torch
is imported by the command that needs it.

Exit status: 0 on success, 1 when the data (or a file) is bad, 2 when the command is
called wrongly (an unknown option or backbone, an output it cannot write), 130 when
interrupted. Errors print as one line (a list of bad files, one line per file), naming
the options to change; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence

from .._version import __version__
from ._flags import as_flags, closest_option

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like the commands' own (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _tta(parser) -> None:
    parser.add_argument("--tta", choices=["flip", "none"], default=None,
                        help="test-time augmentation: 'flip' averages each image's outputs with its mirror "
                             "image's (default: as the model was saved)")


def _skip_bad_images(parser) -> None:
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="leave out files that cannot be read (listed on standard error) instead of "
                             "stopping at them")


def _common(parser: argparse.ArgumentParser, *, compute: bool = True, precision: bool = False) -> None:
    group = parser.add_argument_group("common options")
    if compute:
        group.add_argument("--device", default="auto",
                           help="'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N' (default: auto)")
        group.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                           help="images per batch (default: chosen for the device)")
    if precision:
        group.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                           help="arithmetic on a GPU: 'auto' is bfloat16 where the GPU has it, else float16; "
                                "CPUs compute in float32 (default: auto)")
    group.add_argument("-q", "--quiet", action="store_true", help="print results only: no progress, no epoch table")
    group.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def _network(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Which pretrained network, with which weights, at which image size."""
    parser.add_argument("-b", "--backbone", required=required,
                        help="a registered backbone (see 'sktransfer backbones')")
    parser.add_argument("--weights", type=_weights, default="DEFAULT",
                        help="'DEFAULT', a weights name, 'none' (random) or a weights file")
    parser.add_argument("--input-size", type=_positive_int, default=None, metavar="PX",
                        help="resize images to PX x PX (default: the weights' size)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _number(text: str, accepted, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not accepted(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda value: 0 < value < float("inf"), "a number above 0")


def _non_negative_float(text: str) -> float:
    return _number(text, lambda value: 0 <= value < float("inf"), "a number of at least 0")


def _fraction(text: str) -> float:
    return _number(text, lambda value: 0 <= value < 1, "in [0, 1)")


def _decay(text: str) -> float:
    return _number(text, lambda value: 0 < value < 1, "in (0, 1); leave the option out for no average")


def _freeze_depth(text: str):
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of stages or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more stages, or 'all', got {value}")
    return value


def _weights(text: str):
    return None if text.lower() == "none" else text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sktransfer`` command (also documents it)."""
    parser = _Parser(
        prog="sktransfer",
        description="Transfer learning from the command line: pretrained features and fine-tuned "
                    "classifiers for folders of images (and texts).",
        epilog="Run 'sktransfer COMMAND --help' for a command's options. Exit status: 0 success, "
               "1 bad data, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"sktransfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = commands.choices  # name -> sub-parser, for errors that point to its --help

    p = commands.add_parser("backbones", help="list the registered backbones",
                            description="List backbones: name, provider, modality, feature size, input "
                                        "size, and whether the default weights are on this machine "
                                        "('offline') or would be downloaded.")
    p.add_argument("pattern", nargs="?", metavar="PATTERN",
                   help="shell-style filter such as 'resnet*' or 'timm/*vit*' (namespaces are expanded)")
    _common(p, compute=False)

    p = commands.add_parser("extract", help="write the features of images or texts to a file",
                            description="Run a frozen pretrained backbone over INPUT and write one row "
                                        "of features per image (or text).")
    p.add_argument("input", metavar="INPUT",
                   help="a folder (every image below it), an image, a .txt list of paths or a .csv; "
                        "for a text backbone a .txt (one text per line) or a .csv")
    _network(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="features.npy (a float32 matrix), .csv or .parquet (an id column, then the features)")
    p.add_argument("--column", default=None, help="the .csv column to read (default: 'path', or 'text')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _skip_bad_images(p)
    _common(p)

    p = commands.add_parser("fit", help="fine-tune a classifier on a folder of labelled images",
                            description="Fine-tune BACKBONE on FOLDER (one sub-folder of images per class), "
                                        "report on a stratified held-out split (or --val-folder) and save "
                                        "the model.")
    p.add_argument("folder", metavar="FOLDER", help="one sub-folder of images per class (ImageFolder layout)")
    _network(p, required=False)
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model.safetensors (sktransfer.save) or model.skops (skops); neither holds code")
    p.add_argument("--resume", default=None, metavar="MODEL",
                   help="continue training a saved model (same classes) instead of starting from the "
                        "pretrained weights; its backbone and settings are kept")
    p.add_argument("--freeze-depth", type=_freeze_depth, default=None, metavar="K",
                   help="freeze the first K stages; 'all' trains only the head (default: 0)")
    p.add_argument("--epochs", type=_positive_int, default=10, metavar="N", help="training epochs (default: 10)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="peak learning rate (default: 0.001)")
    p.add_argument("--head-init", choices=["auto", "random", "probe"], default=None,
                   help="'probe' starts fine-tuning from the frozen features' linear probe, the "
                        "recipe that keeps a first epoch from undoing the pretrained features; 'auto' "
                        "does so (with a tenth of the rate on the backbone) when the backbone gets fewer "
                        "than 20 optimizer steps (default: auto)")
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation loss stops improving and keep the best epoch's weights "
                        "(validates on --val-folder, or on the --val split)")
    validation = p.add_mutually_exclusive_group()
    validation.add_argument("--val", type=_fraction, default=None, metavar="FRACTION",
                            help="stratified fraction held out for the report; 0 trains on all (default: 0.2)")
    validation.add_argument("--val-folder", default=None, metavar="DIR",
                            help="a labelled folder (same classes) to validate and report on, instead of a split")
    p.add_argument("--augment", choices=["flip", "flip_crop", "trivialaugment", "randaugment", "none"],
                   default="flip", help="train-time augmentation (default: flip)")
    p.add_argument("--mixup-alpha", type=_non_negative_float, default=None, metavar="ALPHA",
                   help="mixup: blend each training batch with a shuffled copy of itself, labels too "
                        "(0.2-1.0 are usual; default: off, or as the --resume model had it)")
    p.add_argument("--cutmix-alpha", type=_non_negative_float, default=None, metavar="ALPHA",
                   help="cutmix: paste a box of another image into each, labels mixed by area "
                        "(1.0 is usual; default: off, or as the --resume model had it)")
    p.add_argument("--ema-decay", type=_decay, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights while training and end with it "
                        "(e.g. 0.99 for a few hundred steps; default: off, or as the --resume model had it)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed of the split and the training (default: 0)")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="also save training_curve.png and confusion_matrix.png in DIR (needs matplotlib)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    _skip_bad_images(p)
    _common(p, precision=True)

    p = commands.add_parser("predict", help="predict classes and probabilities (or values) with a saved model",
                            description="Predict INPUT with MODEL: one row per image (or text) with the "
                                        "predicted class and the probability of each class; for a "
                                        "multi-label model each label (0 or 1) and its probability; for "
                                        "a regressor the predicted value of each target.")
    p.add_argument("model", metavar="MODEL", help="a .safetensors or .skops model file")
    p.add_argument("input", metavar="INPUT", help="as for 'extract'")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="predictions.csv or .parquet (default: CSV on standard output)")
    p.add_argument("--column", default=None, help="the .csv column to read (default: 'path', or 'text')")
    p.add_argument("--top-k", type=_positive_int, default=None, metavar="K",
                   help="a classifier's K most probable classes and their probabilities (columns class_1, "
                        "proba_1, ... class_K, proba_K) instead of one probability column per class")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _skip_bad_images(p)
    _tta(p)
    _common(p)

    p = commands.add_parser("evaluate", help="score a saved model on a folder of labelled images",
                            description="Print accuracy, a classification report and the confusion matrix "
                                        "of MODEL on FOLDER (one sub-folder per class).")
    p.add_argument("model", metavar="MODEL", help="a .safetensors or .skops model file")
    p.add_argument("folder", metavar="FOLDER", help="one sub-folder of images per class")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="also save confusion_matrix.png, misclassified.png (the most confidently wrong "
                        "images) and saliency.png (Grad-CAM maps) in DIR")
    _skip_bad_images(p)
    _tta(p)
    _common(p)

    p = commands.add_parser("export", help="export a saved model to ONNX (or torch.export) for serving",
                            description="Write MODEL as a self-contained network for serving: its input is a "
                                        "batch of uint8 images (n, H, W, 3) at the model's input size, "
                                        "preprocessing is inside, and its output is what the model returns "
                                        "(class probabilities, values, or features). See 'Deploying a model' "
                                        "in the documentation.")
    p.add_argument("model", metavar="MODEL", help="a .safetensors or .skops model file")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="model.onnx (ONNX, for onnxruntime and other runtimes) or model.pt2 (torch.export)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _common(p, compute=False)

    p = commands.add_parser("demo", help="raw pixels vs frozen features vs fine-tuning on digits",
                            description="The main job, offline: scikit-learn's digits classified from raw "
                                        "pixels, from frozen EfficientNet-Lite0 features, and by "
                                        "fine-tuning it; prints the table and saves a figure. About two "
                                        "minutes on 2 CPU cores.")
    p.add_argument("--output-dir", default=".", metavar="DIR", help="where to save demo.png (default: .)")
    p.add_argument("--epochs", type=_positive_int, default=3, metavar="N", help="fine-tuning epochs (default: 3)")
    _common(p)
    return parser


def _warning_printer(command: str):
    """Warnings as the command's own lines, naming options rather than parameters."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"sktransfer {command}: warning: {as_flags(' '.join(str(message).split()))}", file=sys.stderr)

    return show


def _refuse_unknown(parser: _Parser, command: str, unknown: list) -> None:
    """Exit 2 naming the first argument the command does not take, with the closest
    option and where its options are listed."""
    sub = parser.commands[command]
    first = unknown[0]
    if first.startswith("-"):
        options = [o for action in sub._actions for o in action.option_strings]
        hint = closest_option(first, options)
        sub.exit(EXIT_USAGE, f"{sub.prog}: error: unknown option {first}{hint} (see '{sub.prog} --help')\n")
    sub.exit(EXIT_USAGE, f"{sub.prog}: error: unexpected argument {first!r} (see '{sub.prog} --help')\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Examples
    --------
    >>> from sktransfer.cli import main
    >>> main(["backbones", "resnet1*", "--quiet"])  # doctest: +SKIP
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse_unknown(parser, args.command, unknown)
    from ._commands import COMMANDS, is_usage_error, main_process

    stdout = sys.stdout
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            if not main_process():  # under torchrun every process runs the command; one reports
                args.quiet, sys.stdout = True, open(os.devnull, "w")
                warnings.simplefilter("ignore")
            COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("sktransfer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `sktransfer predict ... | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # every failure is reported as one line, unless --debug
        if args.debug:
            raise
        # one line per line of the message (a list of bad files), each on one line
        lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
        message = as_flags("\n  ".join(lines)) or type(exc).__name__
        print(f"sktransfer {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE if is_usage_error(exc) else EXIT_DATA
    finally:
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout
    return EXIT_OK
