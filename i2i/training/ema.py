"""Exponential moving average of the inference networks' weights (the model file gets it)."""
from __future__ import annotations

import copy
from typing import Mapping

import torch


class EMA:
    """Exponential moving average of networks' weights (buffers are copied, not averaged)."""

    def __init__(self, networks: Mapping[str, torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.networks = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in networks.items()}

    @torch.no_grad()
    def update(self, networks: Mapping[str, torch.nn.Module]) -> None:
        for name, net in networks.items():
            shadow = self.networks[name]
            for avg, param in zip(shadow.parameters(), net.parameters()):
                avg.lerp_(param.detach(), 1.0 - self.decay)
            for avg, buf in zip(shadow.buffers(), net.buffers()):
                avg.copy_(buf)

    def state_dict(self) -> dict:
        return {name: net.state_dict() for name, net in self.networks.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state[name])
