"""Data-parallel fine-tuning under a launcher, on PyTorch's own engine: ``torch.distributed``
and ``DistributedDataParallel`` (DDP).

A fit script started by ``torchrun --nproc_per_node N`` (on one machine or several, see
docs/scaling.rst) runs in N processes; each fit holds a :class:`World` (None outside a
launcher, where nothing here runs). It joins the process group, or starts it (NCCL on
GPUs, gloo on CPUs, with :data:`TIMEOUT`), makes sure every process passed the same data
and draws the same random order, wraps the network in DDP for training steps (gradients
averaged), reduces each batch's loss and gathers validation predictions (identical
histories, so early stopping stops every process at the same epoch), gathers the probe's
features, and at the end gives every process rank 0's weights. A collective that fails
because another process stopped is reported as such, on every process.
"""

from __future__ import annotations

import contextlib
import functools
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.launch import launched, share, share_sizes

#: How long a process waits at a collective for the others before it fails (a process
#: that hangs without exiting). Initialize the process group yourself for another.
TIMEOUT = timedelta(minutes=10)


def _communicating(what: str):
    """A :class:`World` method that exchanges data with the other processes (doing ``what``)."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.communicating(what):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate


@dataclass(frozen=True)
class World:
    """The processes of a launched fit: this one's ``rank`` among ``size``, exchanging
    tensors on ``device`` (the fit's)."""

    rank: int
    size: int
    device: torch.device

    @classmethod
    def join(cls, device: torch.device) -> Optional["World"]:
        """The world of this launch, with its process group started if the script did not
        start one; None outside a launcher."""
        if not launched():
            return None
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)  # NCCL's own buffers go to this process's GPU
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        elif dist.get_backend() == "nccl" and device.type != "cuda":
            raise ValueError("the process group runs NCCL, which exchanges CUDA tensors only: fit on "
                             "device='auto' or 'cuda', or start the group with backend='gloo' to train on the CPU")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @contextlib.contextmanager
    def communicating(self, what: str):
        """Inside the block, a collective that fails because another process stopped (it
        crashed, was killed, or timed out) raises an error that says so."""
        try:
            yield
        except RuntimeError as exc:
            message = str(exc)
            if not (isinstance(exc, dist.DistError) or "gloo" in message or "NCCL" in message):
                raise
            raise RuntimeError(
                f"rank {self.rank} of {self.size} stopped {what}: another process of the launch failed or "
                f"stopped ({message.splitlines()[0] if message else type(exc).__name__}). Its own error says "
                "why (its output, or torchrun's 'Root Cause'); this fit raises on every process, before "
                "anything of it is written") from exc

    def share(self, items) -> np.ndarray:
        """This process's contiguous piece of ``items`` (see :func:`~sktransfer.data.launch.share`)."""
        return share(items, self.rank, self.size)

    @_communicating("while checking that every process has the same data")
    def agree(self, n_samples: int, targets: np.ndarray, seed: Optional[int]) -> int:
        """Check that every process passed the same number of samples and targets (each
        reads only its share of them); return the seed they all use: rank 0's, drawn there
        when ``random_state`` is None."""
        digest = zlib.crc32(np.ascontiguousarray(targets).tobytes())
        drawn = int(np.random.default_rng().integers(2 ** 31)) if seed is None else seed
        mine = torch.tensor([n_samples, digest, drawn], dtype=torch.int64, device=self.device)
        every = [torch.empty_like(mine) for _ in range(self.size)]
        dist.all_gather(every, mine)
        every = [t.tolist() for t in every]
        if len({(n, d) for n, d, _ in every}) > 1:
            told = ", ".join(f"rank {r}: {n} samples, targets {d:08x}" for r, (n, d, _) in enumerate(every))
            raise ValueError("the processes of a launched fit must pass the same X and y (each trains on its "
                             f"share of them), got {told}")
        return every[0][2]

    @_communicating("while averaging a loss")
    def mean(self, value: torch.Tensor, n: int, total: int) -> torch.Tensor:
        """The mean over a global batch of ``total`` samples, from this process's mean
        ``value`` over its ``n`` of them (every process gets the same)."""
        shared = value.detach().float() * (n / total)
        dist.all_reduce(shared)
        return shared

    @_communicating("while gathering rows")
    def gather(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        """Every process's ``rows`` (its :meth:`share` of ``total``), concatenated in rank
        order, on ``rows``' device: the rows of the whole, in its order."""
        sizes = share_sizes(total, self.size)
        local = rows.to(self.device)
        padded = local.new_zeros((max(sizes), *local.shape[1:]))  # all_gather takes equal shapes
        padded[:len(local)] = local
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(rows.device)

    @_communicating("while wrapping the network in DDP")
    def replicate(self, module: nn.Module) -> DistributedDataParallel:
        """``module`` wrapped in DDP (which first gives every process rank 0's weights), for
        training steps: its backward pass averages the gradients of every process."""
        ids = None if self.device.type != "cuda" else [self.device.index or torch.cuda.current_device()]
        # gradients as views of DDP's buckets: no copy into them and back, no second copy in
        # memory; buffers (BatchNorm statistics) not broadcast before every step: training
        # steps normalize by their batch's statistics or by fixed pretrained ones, and the
        # fit ends with rank 0's (broadcast)
        return DistributedDataParallel(module, device_ids=ids, gradient_as_bucket_view=True,
                                       broadcast_buffers=False)

    @_communicating("while sharing rank 0's weights")
    def broadcast(self, module: nn.Module) -> None:
        """Give every process rank 0's weights and buffers (BatchNorm statistics, which
        each process updates on its own batches)."""
        for tensor in module.state_dict().values():
            dense = tensor.contiguous()  # collectives take dense tensors; channels-last weights are not
            dist.broadcast(dense, src=0)
            if dense is not tensor:
                tensor.copy_(dense)
