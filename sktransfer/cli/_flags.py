"""Speaking the command line's language: estimator parameters as the flags that set them,
and the closest option to one the parser does not know (standard library only)."""

from __future__ import annotations

import difflib
import re

#: The estimator parameter each option sets, for messages that name the parameter.
PARAMETER_FLAGS = {
    "backbone": "--backbone",
    "weights": "--weights",
    "input_size": "--input-size",
    "freeze_depth": "--freeze-depth",
    "max_epochs": "--epochs",
    "lr": "--lr",
    "augment": "--augment",
    "mixup_alpha": "--mixup-alpha",
    "cutmix_alpha": "--cutmix-alpha",
    "ema_decay": "--ema-decay",
    "random_state": "--random-state",
    "head_init": "--head-init",
    "early_stopping": "--early-stopping",
    "precision": "--precision",
    "batch_size": "--batch-size",
    "device": "--device",
    "tta": "--tta",
}

# scikit-learn's words for a refused parameter value
_SKLEARN = re.compile(r"The '(\w+)' parameter of \w+ must be (.*?)\. Got (.*) instead\.", re.DOTALL)
_ASSIGNED = re.compile(r"\b(%s)=(\S+?)(?=[\s,;:)]|$)" % "|".join(PARAMETER_FLAGS))
# a parameter named alone: only names no English word shares ("lr", "device" stay)
_NAMED = re.compile(r"\b(%s)\b(?!=)" % "|".join(name for name in PARAMETER_FLAGS if "_" in name))


def _flag_value(match: re.Match) -> str:
    value = match.group(2).strip("'\"")
    if match.group(1) == "weights" and value.startswith("/path/"):
        value = "PATH"
    return f"{PARAMETER_FLAGS[match.group(1)]} {'none' if value == 'None' else value}"


def as_flags(message: str) -> str:
    """``message`` with the parameters it names (``lr``, ``freeze_depth=99``,
    ``weights='/path/to/file.pth'``) written as the options that set them
    (``--lr``, ``--freeze-depth 99``, ``--weights PATH``).

    Examples
    --------
    >>> as_flags("The 'lr' parameter of FineTunedClassifier must be a float in the range (0.0, inf). "
    ...          "Got -1.0 instead.")
    '--lr must be a float in the range (0.0, inf); got -1.0'
    >>> as_flags("freeze_depth=99 is out of range; or raise max_epochs")
    '--freeze-depth 99 is out of range; or raise --epochs'
    """
    found = _SKLEARN.search(message)
    if found and found.group(1) in PARAMETER_FLAGS:
        message = (message[:found.start()] + f"{PARAMETER_FLAGS[found.group(1)]} must be {found.group(2)}; "
                   f"got {found.group(3)}" + message[found.end():])
    message = _ASSIGNED.sub(_flag_value, message)
    return _NAMED.sub(lambda match: PARAMETER_FLAGS[match.group(1)], message)


def closest_option(unknown: str, options) -> str:
    """A hint naming the option closest to ``unknown`` among ``options`` ('' if none is close)."""
    name = unknown.split("=", 1)[0]
    close = difflib.get_close_matches(name, [o for o in options if o.startswith("--")], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
