"""A lock that survives pickling: a model shared with other processes (multiprocessing,
copy.deepcopy) takes a new, unlocked lock with it, where threading.Lock cannot be pickled."""
from __future__ import annotations

import threading
from typing import Any


class PicklableLock:
    """threading.Lock for `with` blocks; a pickled or copied one arrives new and unlocked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)

    def __reduce__(self) -> tuple:
        return PicklableLock, ()
