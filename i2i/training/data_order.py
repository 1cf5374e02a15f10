"""The data order of a run: a pure function of (seed, epoch, index), so a resume sees the
same batches as a run that never stopped.

Epoch e is a permutation seeded by (seed, e), and each sample's random crop / flip / pairing
is seeded by (seed, epoch, index).
"""
from __future__ import annotations

import signal
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def _seed_of(*numbers: int) -> int:
    """A 63-bit seed from integers (different tuples give unrelated streams)."""
    return int(np.random.SeedSequence([n % 2**63 for n in numbers]).generate_state(2, np.uint64)[0] >> 1)


class SeededDataset(Dataset):
    """Item (epoch, index): dataset[index] with torch's RNG seeded by (seed, epoch, index).

    The datasets draw their random crops, flips and unpaired partners from torch's
    generator, so this makes every sample a pure function of its key: the same in every
    worker, after a resume, and independent of the main process's RNG (which stays untouched).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_of(self.seed, epoch, index))
            return self.dataset[index]


class RunOrder(Sampler):
    """Batches of (epoch, index) keys for the rest of the run, from (epoch, batch) on.

    Epoch e is a permutation seeded by (seed, e) (in order with serial_batches); batches
    never straddle two epochs (the last one may be smaller, as in the reference).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, epoch: int, batch: int) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self.batch = epoch, batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.epoch, self.batch
        while True:
            if self.shuffle:
                generator = torch.Generator().manual_seed(_seed_of(self.seed, epoch, -1))
                order = torch.randperm(self.n, generator=generator).tolist()
            else:
                order = list(range(self.n))
            for start in range(first * self.batch_size, self.n, self.batch_size):
                yield [(epoch, i) for i in order[start:start + self.batch_size]]
            epoch, first = epoch + 1, 0


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which checkpoints and stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def make_loader(dataset: Dataset, config: Any, device: torch.device, epoch: int, batch_in_epoch: int) -> DataLoader:
    """The run's DataLoader from (epoch, batch_in_epoch) on, with every sample seeded by its key."""
    return DataLoader(
        SeededDataset(dataset, config.seed),
        batch_sampler=RunOrder(len(dataset), config.batch_size, config.seed, not config.serial_batches,
                               epoch, batch_in_epoch),
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_sigint if config.num_workers > 0 else None,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(config.seed),  # not the global RNG: resume restores that one
    )
