"""The training data order: per-step micro-batches for one rank, resumable at any step.

Every rank draws the same epoch permutation (``torch.randperm`` seeded with ``seed + epoch``,
as :class:`torch.utils.data.DistributedSampler` does) and takes disjoint slices of it. It is
indexed by optimiser step rather than by sample so that

* a run resumed at step *s* of an epoch sees exactly the batches the uninterrupted run saw
  (``set_epoch(epoch, start_step=s)``), and
* one process with ``accumulate = A`` gradient-accumulation micro-batches sees the same
  micro-batches as ``A`` DDP ranks (step *s* covers ``perm[s·G:(s+1)·G]``, G = the global batch;
  micro-batch *j* = ``rank·accumulate + a`` is its *j*-th slice of ``batch_size``), so both give the
  same gradients, BatchNorm statistics included.

The last ``len % G`` samples of each (shuffled) epoch are left out, as ``drop_last=True`` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ..errors import ConfigError


class StepBatchSampler(Sampler[list[int]]):
    """Batch sampler (for ``DataLoader(batch_sampler=...)``) of one rank.

    Args:
        num_samples: dataset length.
        batch_size: samples per micro-batch (per rank and per accumulation step).
        world_size: DDP ranks.
        rank: this rank.
        accumulate: micro-batches accumulated per optimiser step.
        seed: permutation seed (the same on every rank).
        shuffle: shuffle each epoch (False: dataset order).

    Raises:
        ConfigError: fewer samples than one global batch, or an invalid setting.
    """

    def __init__(self, num_samples: int, batch_size: int, world_size: int = 1, rank: int = 0, accumulate: int = 1,
                 seed: int = 0, shuffle: bool = True) -> None:
        if batch_size < 1 or accumulate < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"sampler: batch_size {batch_size}, accumulate {accumulate}, rank {rank}/{world_size} "
                              "are not valid (all >= 1, 0 <= rank < world size)")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.accumulate = accumulate
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start_step = 0
        if self.steps_per_epoch == 0:
            raise ConfigError(f"training set: {num_samples} samples is less than one global batch "
                              f"({self.global_batch} = batch_size {batch_size} × {world_size} ranks × "
                              f"accumulate {accumulate}); lower batch_size")

    @property
    def global_batch(self) -> int:
        """Samples per optimiser step over all ranks and accumulation steps."""
        return self.batch_size * self.world_size * self.accumulate

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start_step`` optimiser steps (resume)."""
        self.epoch = epoch
        self.start_step = start_step

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        g_batch, b = self.global_batch, self.batch_size
        for step in range(self.start_step, self.steps_per_epoch):
            block = order[step * g_batch:(step + 1) * g_batch]
            for a in range(self.accumulate):
                first = (self.rank * self.accumulate + a) * b
                yield block[first:first + b]

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start_step) * self.accumulate
