"""A training run's folder, and everything written into it (the names: `i2i.run_layout`):
settings, the inference model, the last `keep_last` checkpoints, metrics, sample grids and
the run page.

Every file but metrics.jsonl (appended a line at a time) is written atomically, and a
failed write is one line naming the file and the OS error. One process at a time trains
in a run folder: it holds RUN/.lock (an OS lock, see `lock`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from i2i import run_layout as layout
from i2i.atomic import TEMP_NAME, remove_stale_temp_files, write_errors, write_text
from i2i.errors import UsageError
from i2i.settings_file import read_yaml

#: the lock descriptors this process holds; a forked child (a DataLoader worker) closes its
#: copies, so the lock goes with this process, not with workers that outlive it by seconds
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD_LOCKS:
        try:
            os.close(fd)  # the child's copy only: the parent's descriptor still holds the flock
        except OSError:
            pass
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


#: config.yaml records of how a run started, kept as they were when it is resumed
STARTED_WITH = ("threads_resolved", "torch_version", "i2i_version")


class RunFolder:
    """The files of one run; nothing here knows how training works."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / layout.CONFIG
        self.model_path = self.path / layout.MODEL
        self.metrics_path = self.path / layout.METRICS
        self.checkpoint_dir = self.path / layout.CHECKPOINTS
        self.samples_dir = self.path / layout.SAMPLES
        self.lock_path = self.path / layout.LOCK
        self._lock_fd: int | None = None

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ settings

    def saved_settings(self, pipeline: str | None = None) -> dict:
        """config.yaml as a flat dict (with its `pipeline`); with `pipeline`, a run of another
        pipeline is refused (one line)."""
        if not self.config_path.is_file():
            raise UsageError(f"{self.path}/ is not a run folder (no config.yaml): nothing to resume")
        saved = read_yaml(self.config_path)
        if not isinstance(saved.get("pipeline"), str):
            raise UsageError(f"{self.config_path}: damaged (no 'pipeline' setting), so the run cannot be "
                             "resumed from it; restore the file or start a new run")
        if pipeline is not None and saved.get("pipeline") != pipeline:
            raise UsageError(f"{self.path}/ is a {saved.get('pipeline')} run, not {pipeline}; "
                             f"cannot resume it as {pipeline}")
        from i2i.pipelines import get_pipeline

        saved = get_pipeline(saved["pipeline"]).upgrade_saved(saved)  # what an older i2i's run did
        data = saved.get("data")
        if isinstance(data, str) and data and not Path(data).is_absolute() and not Path(data).exists():
            beside = self.path.parent / data  # runs before paths were stored absolute
            if beside.exists():
                saved["data"] = str(beside.resolve())
        return saved

    def check_usable(self, pipeline: str, resume: bool) -> None:
        """Refuse (one line) what would overwrite or mix up runs, before anything is written."""
        if resume:
            self.saved_settings(pipeline)
        elif self.path.exists() and (not self.path.is_dir() or not self._holds_no_work()):
            raise UsageError(f"{self.path}/ already exists and is not empty; continue it with --resume "
                             "or choose another --out")

    def _holds_no_work(self) -> bool:
        """Nothing but what a run writes before its first step (the lock, config.yaml, empty
        checkpoints/ and samples/, and temp files of such a run killed while writing): a new
        run that failed at once, which a new run may replace."""
        for path in self.path.iterdir():
            if path in (self.checkpoint_dir, self.samples_dir) and path.is_dir() and not any(path.iterdir()):
                continue
            if path not in (self.lock_path, self.config_path) and not TEMP_NAME.fullmatch(path.name):
                return False
        return True

    def lock(self) -> None:
        """Take the run folder for this process, or refuse (one line, exit 2) if another holds it.

        Like git's index.lock, but an OS lock (flock) on RUN/.lock: the kernel drops it when
        the process ends (forked children close their copies), so a kill -9 never leaves a
        stale lock. The file holds the pid, for the message. Under the lock, temp files left
        by killed writers are removed.
        """
        import fcntl

        with write_errors(self.lock_path):
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(f"{self.path}/ is in use by another training process (pid {holder}); "
                             "wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        _HELD_LOCKS.add(fd)
        for folder in (self.path, self.checkpoint_dir, self.samples_dir):
            remove_stale_temp_files(folder)

    def unlock(self, remove_if_empty: bool = False) -> None:
        """Release the lock. The file stays (removing it would race a process opening it),
        unless `remove_if_empty`: a new run that failed before its first step leaves no folder."""
        if self._lock_fd is None:
            return
        if remove_if_empty and self._holds_no_work():
            for path in (self.checkpoint_dir, self.samples_dir):
                if path.is_dir():
                    path.rmdir()
            self.config_path.unlink(missing_ok=True)
            remove_stale_temp_files(self.path)
            self.lock_path.unlink()
            self.path.rmdir()
        _HELD_LOCKS.discard(self._lock_fd)
        os.close(self._lock_fd)
        self._lock_fd = None

    def create(self, settings: Mapping[str, Any]) -> None:
        """Make the folders and write config.yaml; a resumed run keeps the records of how it
        started (`STARTED_WITH`: its threads and versions), which a resume reports if changed."""
        import yaml

        if self.config_path.is_file():
            saved = self.saved_settings()
            settings = {**settings, **{key: saved[key] for key in STARTED_WITH if key in saved}}
        for folder in (self.path, self.checkpoint_dir, self.samples_dir):
            with write_errors(folder):
                folder.mkdir(parents=True, exist_ok=True)
        write_text(self.config_path, yaml.safe_dump(dict(settings), sort_keys=False))

    # ------------------------------------------------------------------ checkpoints and model

    def checkpoints(self) -> list[Path]:
        """The run's checkpoints, oldest first."""
        return [path for _, path in layout.by_step(self.checkpoint_dir, ".pt")]

    def save_checkpoint(self, step: int, state: dict, keep_last: int) -> None:
        """checkpoints/step_N.pt, atomically; then only the newest `keep_last` stay."""
        from i2i.checkpoint import save_training_state

        save_training_state(self.checkpoint_dir / layout.checkpoint_name(step), state)
        for old in self.checkpoints()[:-max(1, keep_last)]:
            old.unlink(missing_ok=True)

    def last_good(self) -> str:
        """For messages: where the run can be continued from."""
        kept = self.checkpoints()
        return f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written"

    def save_model(self, networks: Mapping[str, torch.nn.Module], spec: Any) -> None:
        from i2i.checkpoint import save_model

        save_model(self.model_path, dict(networks), spec)

    # ------------------------------------------------------------------ logs, samples, page

    def append_metrics(self, record: dict) -> None:
        with write_errors(self.metrics_path), open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Keep the lines up to `step` (a killed run may have logged past its last checkpoint)."""
        if not self.metrics_path.is_file():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill, or damaged
        write_text(self.metrics_path, "".join(line + "\n" for line in kept))

    def write_samples(self, step: int, columns: list[torch.Tensor]) -> None:
        """samples/step_N.png: one row per image of the batch, one column per entry of `columns`."""
        from torchvision.utils import make_grid

        from i2i.data.io import from_tensor, write_image

        height = max(c.shape[-2] for c in columns)
        width = max(c.shape[-1] for c in columns)
        fixed = []
        for c in columns:
            c = c.detach().float().cpu().clamp(0, 1)
            if c.shape[1] == 1:
                c = c.expand(-1, 3, -1, -1)
            if c.shape[-2:] != (height, width):  # e.g. SR inputs: nearest, to see the pixels
                c = torch.nn.functional.interpolate(c, size=(height, width), mode="nearest")
            fixed.append(c)
        tiles = torch.stack([col[i] for i in range(fixed[0].shape[0]) for col in fixed])
        grid = make_grid(tiles, nrow=len(fixed), padding=2, pad_value=1.0)
        write_image(self.samples_dir / layout.sample_name(step), from_tensor(grid))

    def write_page(self, sample_columns: tuple[str, ...] = ()) -> None:
        """index.html: sample grids over time and loss curves."""
        from i2i.report import write_index

        write_index(self.path, sample_columns)
