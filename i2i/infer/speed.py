"""Which precision and memory layout a network runs in: as asked, or measured once.

`precision="auto"` means bf16 where the hardware computes it natively
(`i2i.device.resolve_precision`), and `channels_last=None` the faster layout. On the CPU
no fixed rule holds (the ranking changes with the network and the image size, and tiny nets
can run faster in fp32, where autocast's casts cost more than they save), so the candidates
are timed at the first forward pass, once per network, thread count and probe size, and the
winner is kept in `$I2I_HOME/speed.json` (keyed also by the CPU model and the torch version), so
later processes skip the probe (about 2 s for resnet_9blocks on 2 cores); delete the file to
measure again. On CUDA, half precision with channels_last is the known fast path for
convolutions (tensor cores), so it is used there without measuring. Measured figures:
benchmarks/README.md.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from i2i.device import autocast, cpu_has_native_bf16, fastest, resolve_precision
from i2i.infer.locks import PicklableLock

Candidate = tuple[str, bool]  # (precision, channels_last)

_TUNED: dict[str, Candidate] = {}  # `_key` -> the winner, in this process
STORE_NAME = "speed.json"  # in $I2I_HOME: the winners of earlier processes


class Speed:
    """A network's precision and layout, and the copy of its weights that runs in it.

    `net` is the network that runs: the given (fp32) one, or a bf16 copy of it. While
    `candidates` is not empty, the choice waits for `settle` at the first forward pass.
    """

    def __init__(self, net: nn.Module, device: torch.device, precision: str, channels_last: bool | None):
        self.device = device
        self.net = net
        self._fp32_net, self._bf16_net = net, None
        self._lock = PicklableLock()  # a pickled Translator takes a new one
        self.candidates: list[Candidate] = []
        self._choose(precision, channels_last)

    def __str__(self) -> str:
        if self.candidates:
            return "precision and layout measured at the first call"
        return f"precision={self.precision}, channels_last={self.channels_last}"

    def _choose(self, precision: str, channels_last: bool | None) -> None:
        """Set (precision, channels_last) as asked, or list the candidates `settle` will time."""
        resolved = resolve_precision(precision, self.device)
        if self.device.type != "cpu":
            if channels_last is None:
                channels_last = self.device.type == "cuda" and resolved in ("bf16", "fp16")
            self.set(resolved, channels_last)
            return
        # The first candidate is the expected winner (bf16 + channels_last on AMX CPUs for
        # real-sized images); the others must prove themselves faster.
        precisions = ["bf16", "fp32"] if precision == "auto" and cpu_has_native_bf16() else [resolved]
        layouts = [True, False] if channels_last is None else [channels_last]
        candidates = [(p, c) for p in precisions for c in layouts]
        self.set(*candidates[0])
        if len(candidates) > 1:
            self.candidates = candidates
            arch = json.dumps(getattr(self.net, "arch", type(self.net).__name__), sort_keys=True, default=str)
            self._key = (arch, str(self.device), precision, channels_last)

    def set(self, precision: str, channels_last: bool) -> None:
        """Run in `precision` and this memory layout from now on."""
        self.precision, self.channels_last = precision, channels_last
        if precision == "bf16":
            if self._bf16_net is None:
                self._bf16_net = copy.deepcopy(self._fp32_net).to(torch.bfloat16)
            self.net = self._bf16_net
        else:
            self.net = self._fp32_net
        self.net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pass of `net` in the chosen layout and precision.

        bf16 runs a bf16 copy of the weights on bf16 pixels: bf16 has fp32's exponent range,
        so casting the weights loses only what autocast loses in every convolution anyway,
        without autocast's per-call casts of the weights and of the norms' fp32 outputs
        (Real-ESRGAN also runs its models in half weights). fp16 stays under autocast, whose
        fp32 ops guard fp16's narrow range.
        """
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16":
            return self.net(x.to(torch.bfloat16))
        with autocast(self.device, self.precision):
            return self.net(x)

    def settle(self, fastest: Callable[[list[Candidate]], Candidate], probe: tuple[int, int]) -> None:
        """At the first forward pass: take the candidate `fastest` picks on a `probe`-sized
        input, timed once per network, thread count (translate_folder's workers compute on
        fewer threads than one call) and probe size, and kept for later processes
        (`STORE_NAME`); concurrent callers wait for the first one's choice."""
        with self._lock:
            if not self.candidates:
                return
            key = json.dumps([*self._key, torch.get_num_threads(), list(probe), _machine()])
            if key not in _TUNED:
                kept = _read_store().get(key)
                if kept in [list(c) for c in self.candidates]:
                    _TUNED[key] = (kept[0], kept[1])
                else:
                    sys.stderr.write("measuring which precision and memory layout run this model fastest "
                                     "(once)...\n")  # one write: progress lines come from another thread
                    sys.stderr.flush()
                    _TUNED[key] = fastest(self.candidates)
                    _write_store(key, _TUNED[key])
            self.set(*_TUNED[key])
            self.candidates = []
            if self.precision != "bf16":
                self._bf16_net = None  # the probe's copy

    def fastest(self, candidates: list[Candidate], run: Callable[[], Any]) -> Candidate:
        """The candidate under which `run` (a forward pass on a probe) is fastest
        (`i2i.device.fastest`: the first stays unless another wins every round by 10%)."""
        return fastest(candidates, lambda candidate: self.set(*candidate), run)


def _machine() -> list[str]:
    """What else a kept winner depends on: the CPU and the torch build."""
    from i2i.device import cpu_model

    return [cpu_model(), torch.__version__]


def _store_path() -> Path:
    from i2i.download import home

    return home() / STORE_NAME


def _read_store() -> dict:
    """The kept winners; an unreadable file counts as none (it is only a cache)."""
    try:
        values = json.loads(_store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _write_store(key: str, winner: Candidate) -> None:
    """Keep `winner` for later processes (atomic; a folder that cannot be written is skipped, with
    a note)."""
    from i2i.atomic import write_bytes
    from i2i.errors import I2IError

    values = {**_read_store(), key: list(winner)}
    try:
        write_bytes(_store_path(), json.dumps(values, indent=0).encode())
    except (I2IError, OSError):  # said, or every run measures again without a word why
        sys.stderr.write(f"note: cannot keep the choice in {_store_path()} (not writable), so every run measures "
                         "again; set I2I_HOME to a writable folder\n")
