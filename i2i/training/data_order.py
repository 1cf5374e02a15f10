"""The data order of a run: a pure function of (seed, epoch, index), so a resume sees the
same batches as a run that never stopped.

Epoch e is a permutation seeded by (seed, e), and each sample's random crop / flip / pairing
is seeded by (seed, epoch, index). Under torchrun each step takes one global batch of
batch size x processes from that order and each rank its own slice of it, so the samples of
a step do not depend on how many processes share it, and resume stays exact.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from i2i.seeds import seed_of


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
            torch.manual_seed(seed_of(self.seed, epoch, index))
            return self.dataset[index]


def padded_length(n: int, world_size: int) -> int:
    """An epoch's length under `world_size` processes: `n` rounded up to a multiple of it
    (the first samples of the epoch's order are repeated, as torch's DistributedSampler does),
    so every rank gets a batch of the same size at every step."""
    return -(-n // world_size) * world_size


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Steps in an epoch of `n` samples, `batch_size` per process."""
    return -(-padded_length(n, world_size) // (batch_size * world_size))


class RunOrder(Sampler):
    """Batches of (epoch, index) keys for the rest of the run, from (epoch, batch) on.

    Epoch e is a permutation seeded by (seed, e) (in order with serial_batches); batches
    never straddle two epochs (the last one may be smaller, as in the reference). With
    `world_size` processes, step k of an epoch is global batch k of batch_size x world_size
    keys, and rank r takes the r-th equal slice of it.
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, epoch: int, batch: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self.batch = epoch, batch
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.epoch, self.batch
        per_step = self.batch_size * self.world_size
        while True:
            if self.shuffle:
                generator = torch.Generator().manual_seed(seed_of(self.seed, epoch, -1))
                order = torch.randperm(self.n, generator=generator).tolist()
            else:
                order = list(range(self.n))
            length = padded_length(self.n, self.world_size)
            order = (order * -(-length // self.n))[:length]
            for start in range(first * per_step, length, per_step):
                chunk = order[start:start + per_step]
                share = len(chunk) // self.world_size
                yield [(epoch, i) for i in chunk[self.rank * share:(self.rank + 1) * share]]
            epoch, first = epoch + 1, 0


def _leave_signals_to_main(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and a SIGTERM sent to the whole process group (Slurm,
    systemd, kill -TERM -PGID) to the main process, which checkpoints and then stops them: the
    workers dying first ended the run on a DataLoader error, unsaved. A SIGTERM from the main
    process itself (torch's `terminate()` of a worker stuck past its shutdown) still ends the
    worker, so a stuck worker never hangs the exit; where the OS cannot tell who sent it
    (no sigwaitinfo), SIGTERM keeps its default."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "sigwaitinfo") and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # threads started later inherit it
        threading.Thread(target=_end_on_sigterm_from, args=(os.getppid(),), daemon=True,
                         name="i2i-sigterm").start()


def _end_on_sigterm_from(parent: int) -> None:
    """Take this worker's SIGTERMs; exit on one its main process sent, drop the others."""
    while True:
        if signal.sigwaitinfo({signal.SIGTERM}).si_pid == parent:
            os._exit(0)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def make_loader(dataset: Dataset, config: Any, device: torch.device, epoch: int, batch_in_epoch: int,
                rank: int = 0, world_size: int = 1) -> DataLoader:
    """The run's DataLoader from (epoch, batch_in_epoch) on, with every sample seeded by its
    key; under torchrun, this rank's share of every step."""
    return DataLoader(
        SeededDataset(dataset, config.seed),
        batch_sampler=RunOrder(len(dataset), config.batch_size, config.seed, not config.serial_batches,
                               epoch, batch_in_epoch, rank, world_size),
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_leave_signals_to_main if config.num_workers > 0 else None,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(config.seed),  # not the global RNG: resume restores that one
    )
