"""The learning-rate schedule of a run, as a pure function of the step (plus plateau state)."""
from __future__ import annotations

import math
from typing import Mapping

import torch

from i2i.training.settings import TrainConfig


class Schedule:
    """The learning-rate factor of every optimiser, as a function of the step.

    The unit is an epoch (the reference), or one step when `max_steps` is set; then the
    run's length is split between "constant" and "decay" in the ratio n_epochs : n_epochs_decay.

    - linear: the reference's lambda rule, 1 - max(0, u + 1 - n_epochs) / (n_epochs_decay + 1)
      for unit u (0-based): n_epochs units at full rate, then linear decay towards 0.
    - step: lr_gamma ** (u // lr_decay_iters).
    - cosine: half a cosine from 1 to 0 over the whole run (the reference's T_max=n_epochs
      restarts upwards halfway through a default run; this one does not).
    - plateau: x0.2 when the epoch mean of the pipeline's `monitor` loss has not improved
      by 1% for 5 epochs (the reference's settings; its version is never fed a metric).
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int, total_steps: int) -> None:
        self.policy = config.lr_policy
        self.gamma = config.lr_gamma
        self.decay_every = max(1, config.lr_decay_iters)
        if config.max_steps > 0:
            self.unit = 1
            epochs = max(1, config.n_epochs + config.n_epochs_decay)
            self.n_constant = round(total_steps * config.n_epochs / epochs)
            self.n_decay = total_steps - self.n_constant
        else:
            self.unit = steps_per_epoch
            self.n_constant, self.n_decay = config.n_epochs, config.n_epochs_decay
        # plateau state, saved in checkpoints
        self.plateau_factor, self.best, self.bad_epochs = 1.0, math.inf, 0
        self.epoch_sum, self.epoch_count = 0.0, 0

    def factor(self, step: int) -> float:
        u = step // self.unit
        if self.policy == "linear":
            return 1.0 - max(0, u + 1 - self.n_constant) / (self.n_decay + 1)
        if self.policy == "step":
            return self.gamma ** (u // self.decay_every)
        if self.policy == "cosine":
            total = max(1, self.n_constant + self.n_decay)
            return 0.5 * (1.0 + math.cos(math.pi * min(u, total) / total))
        return self.plateau_factor

    def apply(self, optimizers: Mapping[str, torch.optim.Optimizer], step: int) -> float:
        """Set every param group's lr to its initial lr times the factor; returns the first lr."""
        factor = self.factor(step)
        lrs = []
        for opt in optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor
                lrs.append(group["lr"])
        return lrs[0] if lrs else 0.0

    def observe(self, value: float) -> None:
        """The monitored loss of one step (averaged per epoch for `plateau`)."""
        self.epoch_sum += value
        self.epoch_count += 1

    def end_epoch(self) -> None:
        if self.policy == "plateau" and self.epoch_count:
            mean = self.epoch_sum / self.epoch_count
            if mean < self.best * (1 - 0.01):
                self.best, self.bad_epochs = mean, 0
            else:
                self.bad_epochs += 1
                if self.bad_epochs > 5:
                    self.plateau_factor *= 0.2
                    self.bad_epochs = 0
        self.epoch_sum, self.epoch_count = 0.0, 0

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("plateau_factor", "best", "bad_epochs", "epoch_sum", "epoch_count")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
