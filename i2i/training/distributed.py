"""Training on several processes: torchrun + DistributedDataParallel, the standard engine.

    torchrun --nproc_per_node 4 -m i2i train cyclegan --data DATA --out RUN

torchrun starts one process per GPU (or CPU share) with RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous in the environment; `start` reads them and joins the process group (nccl on
GPUs, gloo on the CPU). Without them everything here is a no-op: one process, rank 0.

What each process does, and what only rank 0 does:
- every rank builds the same networks, loads the same checkpoint, takes its share of each
  global batch (`i2i.training.data_order`) and runs the pipeline's step; DDP averages the
  gradients, so `--batch-size` is per process and the global batch is batch size x processes;
- every rank has its own random streams (augmentation, dropout, CycleGAN's image pools),
  seeded from (seed, rank); a checkpoint holds every rank's (`gather_to_main`);
- rank 0 alone takes the run folder's lock and writes config.yaml, checkpoints, the model
  file, samples, metrics (losses averaged over the ranks) and the page.

A process that dies (killed, out of memory) breaks the others' next collective: they stop
with one line (`PeerLost`), and `--resume` continues from the last checkpoint.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch

from i2i.errors import I2IError, UsageError
from i2i.seeds import seed_of


class PeerLost(I2IError):
    """Another process of the job stopped; this one cannot go on without it."""


@dataclass(frozen=True)
class World:
    """Where this process stands in the job (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_environment() -> World:
    """The World torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE); one process when WORLD_SIZE is absent or 1."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return World()
        return World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                     local_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except (KeyError, ValueError) as error:
        raise UsageError(f"WORLD_SIZE is set but the torchrun environment is incomplete ({error}); "
                         "start distributed training with torchrun") from None


_CONTROL: Any = None  # the gloo group for small CPU-side messages (stop flags, per-rank state)


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (once per process) and return this rank's device: with CUDA,
    GPU LOCAL_RANK (`--device cuda:N` is refused: torchrun assigns the GPUs)."""
    global _CONTROL
    if not world.distributed:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        if device.index not in (None, world.local_rank) and world.local_size > 1:
            raise UsageError(f"--device {device} under torchrun: each process takes GPU LOCAL_RANK; use --device cuda")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UsageError(f"distributed training runs on CUDA GPUs (nccl) or the CPU (gloo), not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        _CONTROL = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
    return device


def finish(world: World) -> None:
    """Leave the process group (at the end of a run; a later run joins again)."""
    global _CONTROL
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _CONTROL = None


def default_threads(world: World) -> int | None:
    """CPU threads for this process when --threads is 0: None (torch's default, one per core)
    for one process; the cores shared out between the processes of this machine otherwise,
    unless OMP_NUM_THREADS says (torchrun sets it to 1 for several processes)."""
    if not world.distributed or "OMP_NUM_THREADS" in os.environ:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // world.local_size)


def seed_of_rank(seed: int, rank: int) -> int:
    """Rank 0 keeps the run's seed (one process trains as before); the others get their own."""
    return seed if rank == 0 else seed_of(seed, rank, -2)


def wrap(pipe: Any, world: World, device: torch.device, sync_bn: bool) -> None:
    """Put every trained network of `pipe` in DistributedDataParallel, in place.

    The pipeline calls its networks by attribute (`self.G_A(x)`), so those attributes get
    the DDP wrappers; `pipe.networks` keeps the plain modules (checkpoints, model file and
    EMA see the usual state-dict keys). Buffers are synchronised once, at the start; then each
    rank keeps its own BatchNorm statistics unless `sync_bn` (rank 0's are saved), and a
    forward pass needs no collective (rank 0's samples, or anyone's, cannot hang the others).
    """
    if sync_bn and device.type != "cuda":
        raise UsageError("--sync-bn needs GPUs: torch's SyncBatchNorm does not run on the CPU")
    if not world.distributed:
        return
    from torch.nn.parallel import DistributedDataParallel

    class Wrapped(DistributedDataParallel):
        """DDP that answers for the network's own attributes (arch, size_multiple, ...)."""

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    import inspect

    # buffers stay per rank after the start (newer torch names the switch forward_sync_buffers)
    no_buffer_sync = ({"forward_sync_buffers": False}
                      if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
                      else {"broadcast_buffers": False})
    wrapped = {}
    for name, net in pipe.networks.items():
        if sync_bn:
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            pipe.networks[name] = net
        ids = [device.index] if device.type == "cuda" else None
        wrapped[id(net)] = Wrapped(net, device_ids=ids, **no_buffer_sync)
    for attr, value in list(vars(pipe).items()):
        if isinstance(value, torch.nn.Module) and id(value) in wrapped and attr != "networks":
            setattr(pipe, attr, wrapped[id(value)])


def unwrap(networks: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    """The plain modules behind DDP wrappers (what EMA and the model file take)."""
    from torch.nn.parallel import DistributedDataParallel

    return {k: v.module if isinstance(v, DistributedDataParallel) else v for k, v in networks.items()}


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of `values` over the ranks (itself for one process): logged losses."""
    if not world.distributed:
        return values
    import torch.distributed as dist

    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / world.size


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank if `flag` is True on any (a stop signal seen by one rank stops
    all of them at the same step, so they checkpoint together)."""
    if not world.distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_CONTROL)
    return bool(value.item())


def gather_to_main(obj: Any, world: World) -> list[Any] | None:
    """Every rank's `obj` (CPU tensors and plain Python) in rank order, on rank 0; None on the others."""
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * world.size if world.main else None
    dist.gather_object(obj, out, dst=0, group=_CONTROL)
    return out


def broadcast_from_main(obj: Any, world: World) -> Any:
    """Rank 0's `obj` on every rank."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_CONTROL)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier(group=_CONTROL)


#: words in the errors of a collective whose peer is gone (gloo, nccl, the TCP store)
_PEER_LOSS = ("connection closed", "connection reset", "broken pipe", "peer", "socket", "timed out", "timeout",
              "nccl", "gloo", "store")


def peer_lost(error: BaseException, world: World, step: int, last_good: str) -> PeerLost | None:
    """The one-line error for a collective that failed because another rank stopped (None:
    `error` is something else)."""
    if not world.distributed or not isinstance(error, RuntimeError):
        return None
    text = str(error).lower()
    if not any(word in text for word in _PEER_LOSS):
        return None
    first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    return PeerLost(f"another process of this {world.size}-process job stopped (this is rank {world.rank}, "
                    f"at step {step}: {first}); {last_good}. Continue with --resume (same command)")


def print_main(world: World, *args: Any) -> None:
    """Print to stderr on rank 0 only (the other ranks' lines would repeat it)."""
    if world.main:
        print(*args, file=sys.stderr, flush=True)
