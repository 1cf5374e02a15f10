"""Seeds derived from a run's seed: every random stream of a run (data order, each sample, each
torchrun rank, DiffAugment) comes from this one derivation, so none repeats another."""
from __future__ import annotations

import numpy as np


def seed_of(*numbers: int) -> int:
    """A 63-bit seed from integers (different tuples give unrelated streams)."""
    return int(np.random.SeedSequence([n % 2**63 for n in numbers]).generate_state(2, np.uint64)[0] >> 1)
