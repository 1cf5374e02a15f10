"""Every random number generator's state, and running code without disturbing the training."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator, Mapping

import numpy as np
import torch


def rng_state() -> dict:
    """Every RNG, as tensors and plain Python (checkpoints are read with weights_only=True)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


@contextlib.contextmanager
def untouched(networks: Mapping[str, torch.nn.Module], device: torch.device,
              backward: bool = False) -> Iterator[None]:
    """Run code on the networks (sampling, timing) without changing the training: train/eval
    modes, buffers (BatchNorm statistics) and every RNG are restored afterwards. With
    `backward`, gradients are computed inside and dropped afterwards (the networks had none)."""
    modes = [(m, m.training) for net in networks.values() for m in net.modules()]
    buffers = [(b, b.detach().clone()) for net in networks.values() for b in net.buffers()]
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda), torch.set_grad_enabled(backward):
            yield
    finally:
        if backward:
            for net in networks.values():
                net.zero_grad(set_to_none=True)
        for module, training in modes:
            module.training = training
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
        random.setstate(py_state)
        np.random.set_state(np_state)
