"""Training: settings, the run folder, and the trainer that every pipeline shares.

    settings.py    TrainConfig and make_settings (defaults < pipeline < config.yaml < YAML < flags)
    run_folder.py  RunFolder: config.yaml, checkpoints, model file, metrics, samples, page
    trainer.py     Trainer (state, save/restore, the loop) and train()
    schedule.py, ema.py, layout.py, data_order.py, rng.py: its parts
"""
from i2i.training.run_folder import RunFolder
from i2i.training.settings import TrainConfig, make_settings
from i2i.training.trainer import Trainer, TrainingDiverged, train

__all__ = ["RunFolder", "TrainConfig", "Trainer", "TrainingDiverged", "make_settings", "train"]
