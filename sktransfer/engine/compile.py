"""``compile="auto"``: compile a frozen network when the compile time pays back within the call.

Compiling (``torch.compile``) makes a network faster once compiled, but the first call
compiles for seconds to a minute. ``"auto"`` runs the first batches eagerly, times them,
and compiles only when the images still to go would take long enough eagerly for the
expected speed-up to win the compile time back; otherwise it stays eager. Both figures
come from what compiling the same network at the same shapes did before: the compile
time it took and the speed-up it gave, measured on the batches after it (records kept
beside torch's persistent inductor cache, which makes a second compile cheap, across
fits, folds and processes), or cold defaults.

Only the backbone after preprocessing is compiled, at one fixed batch size: the last,
smaller batch is padded (copies of its first row, dropped from the output; frozen
networks run in eval mode, where rows do not interact), so the compiled graph is reused
and never recompiled for a new batch size. Texts, sorted by length, are padded to a few
bucket lengths (powers of two) once compiled, so the encoder compiles once per bucket
rather than once per batch. A compile failure falls back to eager with a warning.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import tempfile
import time
import warnings
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..persistence.atomic import atomic_path

#: Steady-state speed-up assumed from compiling a frozen backbone, by device type, until
#: a record says what it was for that network (the measured ones: ``transform`` rows of
#: ``benchmarks/results/*.json``).
EXPECTED_SPEEDUP = {"cpu": 1.2, "cuda": 1.5}
#: Seconds a first compile is assumed to take when no record says otherwise (GPUs
#: compile faster but autotune more).
COLD_COMPILE_SECONDS = {"cpu": 40.0, "cuda": 60.0}
#: Below this many batches, never compile: the timing batches alone are most of the work.
MIN_BATCHES = 8
#: Full compiled batches timed (the fastest counts) for the speed-up compiling gave.
MEASURED_BATCHES = 3

#: The last decisions, newest last (what ``compile="auto"`` chose and why).
decisions: deque = deque(maxlen=32)


@dataclasses.dataclass(frozen=True)
class CompileDecision:
    """Why a call ran compiled or eager."""

    compiled: bool
    reason: str
    images: int
    batch_size: int
    eager_seconds_per_image: Optional[float] = None
    compile_seconds_estimate: Optional[float] = None
    expected_speedup: Optional[float] = None
    compile_seconds: Optional[float] = None
    measured_speedup: Optional[float] = None


def record_key(spec, stage_index: int, input_size, batch_size: int) -> str:
    """Names a network at its shapes in the compile-time records (not its weights: a
    fine-tuned copy compiles as fast as the original)."""
    return (f"{spec.backbone}|stage {stage_index}|{tuple(input_size)}|batch {batch_size}|"
            f"{spec.torch_device.type}|{spec.precision}|torch {torch.__version__}")


def pays_back(images_left: int, seconds_per_image: float, compile_seconds: float, speedup: float) -> bool:
    """Whether compiling now, for a steady ``speedup``, saves time over running
    ``images_left`` images eagerly."""
    eager = images_left * seconds_per_image
    saved = eager * (1 - 1 / speedup) if speedup > 0 else float("-inf")
    return saved > compile_seconds


def _records_path() -> Path:
    # beside torch's inductor cache: when that is wiped, the estimates go with it
    folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return Path(folder) / "sktransfer-compile-seconds.json"


def read_record(key: str) -> dict:
    """What compiling ``key`` did before: ``{"compile_seconds": s, "speedup": r}``, either
    or both missing when unknown."""
    try:
        record = json.loads(_records_path().read_text()).get(key, {})
    except (OSError, ValueError, AttributeError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(key: str, **figures: float) -> None:
    """Merge ``figures`` into the record of ``key``."""
    path = _records_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            records = json.loads(path.read_text())
        except (OSError, ValueError):
            records = {}
        if not isinstance(records, dict):
            records = {}
        old = records.get(key)
        records[key] = {**(old if isinstance(old, dict) else {}), **{k: round(v, 3) for k, v in figures.items()}}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(records, indent=1, sort_keys=True))
    except OSError:  # a read-only cache folder costs only the estimates
        pass


class AutoCompiler:
    """Makes the :class:`AutoCompiled` runner of one ``transform`` call (``extract``'s
    ``wrap``), and tells the caller which compiled trunk to keep afterwards.

    Parameters
    ----------
    kept : module or None
        The compiled trunk of an earlier call.
    **settings
        The keyword arguments of :class:`AutoCompiled` but ``kept``.
    """

    def __init__(self, kept=None, **settings):
        self.settings = settings
        self.runner = None
        self.kept = kept

    def __call__(self, model, images: int) -> "AutoCompiled":
        self.runner = AutoCompiled(model, images, kept=self.kept, **self.settings)
        return self.runner

    @property
    def trunk(self):
        """The compiled trunk to keep: the runner's, or the earlier one when nothing ran."""
        return self.kept if self.runner is None else self.runner.trunk


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` grown to ``rows`` rows with copies of its first (a valid input whatever the
    modality; the outputs of the copies are dropped)."""
    return t if len(t) >= rows else torch.cat([t, t[:1].expand(rows - len(t), *t.shape[1:])])


class _FixedBatch(nn.Module):
    """A compiled module always called at ``batch_size`` rows: smaller batches are padded.
    ``identity`` names the network and weights it was compiled from. With ``graphs``
    (CUDA graphs), each call is a new step and its output is copied out of the graph's
    memory, which the next replay overwrites."""

    def __init__(self, compiled: nn.Module, batch_size: int, identity: str, graphs: bool = False):
        super().__init__()
        self.compiled = compiled
        self.batch_size = batch_size
        self.identity = identity
        self.graphs = graphs
        self.shapes = {}  # calls so far at each input shape compiled for (text buckets; one for images)

    def forward(self, *inputs):
        n = len(inputs[0])
        inputs = [_pad_rows(t, self.batch_size) for t in inputs]
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
            return self.compiled(*inputs)[:n].clone()
        return self.compiled(*inputs)[:n]


def compile_trunk(trunk: nn.Module, batch_size: int, device: torch.device, identity: str) -> nn.Module:
    """``trunk`` compiled for batches of ``batch_size``: on CPUs with the weights frozen in as
    constants, on CUDA with CUDA graphs (one shape, so one graph replayed: no launch overhead)."""
    if device.type == "cuda":
        return _FixedBatch(torch.compile(trunk, dynamic=False, mode="reduce-overhead"), batch_size, identity,
                           graphs=True)
    return _FixedBatch(torch.compile(trunk, dynamic=False, options={"freezing": True}), batch_size, identity)


class AutoCompiled:
    """What ``run`` calls in place of a :class:`~sktransfer.nn.networks.FeatureNet` (or a
    ``TextFeatureNet``): eager at first, compiled from the batch where compiling pays back
    (or from the start with ``mode=True``).

    Work is counted in rows for images and in real token slots (rows x the batch's longest
    text, before bucket padding) for texts, so that compiled calls are timed on the work
    eager ones do; batches of texts grow longer as they go (sorted by length), and the work
    left is estimated at the length seen last, an underestimate.

    Parameters
    ----------
    model : FeatureNet or TextFeatureNet
    images : int
        The images (or texts) this call runs.
    mode : bool or "auto"
    kept : module or None
        The compiled trunk an earlier call ended with (its ``trunk``), reused when it was
        compiled from the same network and weights at the same batch size.
    key : str
        Names the network and shapes in the compile-time records.
    identity : callable
        Returns the network's identity with its weights as they are (hashing them,
        so called only when needed): a compiled trunk kept from an earlier call is
        reused only for the same identity (compiling freezes the weights in).
    batch_size : int
    shapes : int, default=1
        How many input shapes the call may compile (text buckets): the compile time
        estimate counts each.

    Attributes
    ----------
    trunk : module or None
        The compiled trunk this call runs (or ran) with: what the caller keeps for
        its next call. None when it runs eagerly.
    """

    def __init__(self, model, images: int, *, mode, kept=None, key: str, identity: Callable[[], str],
                 batch_size: int, shapes: int = 1):
        self.model, self.key, self.identity = model, key, identity
        self.images, self.batch_size, self.shapes = images, batch_size, shapes
        self.device = next(model.trunk.parameters()).device
        self.done = 0
        self.timed = []  # seconds per unit of work of eager batches
        self.compiled_timed = []  # and of compiled ones, once settled
        self.width = 1  # work per row: 1 for images, the last text batch's longest text
        self.compiled = None  # the network around the compiled trunk, once there is one
        self.trunk = None
        self.decision = None  # until decided: eager batches, timed
        if kept is not None and kept.batch_size == batch_size and kept.identity == identity():
            self._use(kept, CompileDecision(True, "compiled in an earlier call", images, batch_size))
        elif mode is True:
            self._compile(CompileDecision(True, "compile=True", images, batch_size))
        elif images < MIN_BATCHES * batch_size:
            self._record(CompileDecision(False, f"fewer than {MIN_BATCHES} batches", images, batch_size))

    def _record(self, decision: CompileDecision) -> None:
        self.decision = decision
        decisions.append(decision)

    def _update(self, **changes) -> None:
        """The current decision with what was measured since (in place in ``decisions``)."""
        old, self.decision = self.decision, dataclasses.replace(self.decision, **changes)
        if decisions and decisions[-1] is old:
            decisions[-1] = self.decision
        else:
            decisions.append(self.decision)

    def _use(self, trunk, decision) -> None:
        self.trunk = trunk
        self.compiled = self.model.with_trunk(trunk)
        self._record(decision)

    def _compile(self, decision: CompileDecision) -> None:
        self._use(compile_trunk(self.model.trunk, self.batch_size, self.device, self.identity()), decision)

    def _decide(self) -> None:
        seconds_per_unit = min(self.timed)
        record = read_record(self.key)
        estimate = record.get("compile_seconds", COLD_COMPILE_SECONDS.get(self.device.type, 40.0)) * self.shapes
        speedup = record.get("speedup", EXPECTED_SPEEDUP.get(self.device.type, 1.2))
        rows_left = self.images - self.done
        facts = dict(images=self.images, batch_size=self.batch_size,
                     eager_seconds_per_image=seconds_per_unit * self.width, compile_seconds_estimate=estimate,
                     expected_speedup=speedup)
        if pays_back(rows_left * self.width, seconds_per_unit, estimate, speedup):
            why = ", ".join(f"{what} {'recorded' if name in record else 'assumed'}"
                            for what, name in (("compile time", "compile_seconds"), ("speed-up", "speedup")))
            self._compile(CompileDecision(True, f"pays back: {rows_left} inputs left, {why}", **facts))
        else:
            self._record(CompileDecision(False, f"would not pay back over the {rows_left} inputs left", **facts))

    @contextmanager
    def _timing(self, seconds: list, units: int):
        """Appends the seconds per unit of work of the block (the device's queued work included)."""
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds.append((time.perf_counter() - start) / units)

    @staticmethod
    def _size(args, kwargs) -> tuple:
        """``(rows, width)`` of a batch: images as positional input (width 1), texts as
        ``input_ids`` and ``attention_mask`` keywords (width: their padded length)."""
        if kwargs:
            ids = kwargs["input_ids"]
            return len(ids), ids.shape[1]
        return len(args[0]), 1

    def __call__(self, *args, **kwargs):
        rows, width = self._size(args, kwargs)
        if self.compiled is not None:
            return self._compiled_call(args, kwargs, rows, width)
        if self.decision is not None:  # decided: eager
            return self.model(*args, **kwargs)
        self.width = width
        if not self.done:  # the first batch warms up: not timed
            out = self.model(*args, **kwargs)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        else:
            with self._timing(self.timed, rows * width):
                out = self.model(*args, **kwargs)
        self.done += rows
        if len(self.timed) == 2:
            self._decide()
        return out

    def _eager_from_now(self, reason: str) -> None:
        self.trunk = self.compiled = None
        self._record(CompileDecision(False, reason, self.images, self.batch_size))

    def _compiled_call(self, args, kwargs, rows, width):
        # work counted in real (unpadded) token slots, as for eager batches
        given = kwargs
        if kwargs:  # texts: padded to their bucket's length, one of a few compiled shapes
            kwargs = self.model.bucketed(**kwargs)
        shape = kwargs["input_ids"].shape[1] if kwargs else None  # images reach the trunk at one shape
        trunk = self.compiled.trunk  # counts its calls per shape, kept with it across calls
        calls = trunk.shapes.get(shape, 0)
        # the first call at a shape compiles, and with CUDA graphs the next ones warm up and
        # capture: any of them may fail, and none runs at the steady speed
        settling = calls < (3 if trunk.graphs else 1)
        measure = (not settling and bool(self.timed) and len(self.compiled_timed) < MEASURED_BATCHES
                   and rows == self.batch_size)
        seconds = []
        try:
            with self._timing(seconds if calls == 0 else self.compiled_timed if measure else [], rows * width):
                out = self.compiled(*args, **kwargs)
        except torch.OutOfMemoryError:
            # the compiled graph pads every piece back to the full batch: let the caller
            # halve the batch, eagerly
            self._eager_from_now("out of memory at the compiled batch size")
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure of the compiler: run eagerly
            if not settling:
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            warnings.warn(f"compiling the backbone failed, running it eagerly instead ({type(exc).__name__}: "
                          f"{message})", RuntimeWarning, stacklevel=2)
            self._eager_from_now(f"compile failed: {type(exc).__name__}")
            return self.model(*args, **given)
        trunk.shapes[shape] = calls + 1
        if calls == 0:
            compile_seconds = seconds[0] * rows * width
            write_record(self.key, compile_seconds=compile_seconds)  # per shape
            self._update(compile_seconds=round((self.decision.compile_seconds or 0) + compile_seconds, 3))
        elif measure and len(self.compiled_timed) == MEASURED_BATCHES:
            speedup = min(self.timed) / min(self.compiled_timed)
            write_record(self.key, speedup=speedup)
            self._update(measured_speedup=round(speedup, 3))
        return out
