"""The contrastive training loop, its callbacks and checkpoints (no scikit-learn here)."""

from .callbacks import (
    Callback,
    Checkpoint,
    DataCentring,
    DurationNotice,
    HistoryWriter,
    LambdaCallback,
    ProgressBar,
)
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .divergence import DivergenceError, DivergenceMonitor, DivergenceWarning
from .loop import ContrastiveTrainer, lr_factor
from .restarts import AnnealedRestarts

__all__ = [
    "AnnealedRestarts",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "ContrastiveTrainer",
    "DataCentring",
    "DivergenceError",
    "DivergenceMonitor",
    "DivergenceWarning",
    "DurationNotice",
    "HistoryWriter",
    "LambdaCallback",
    "ProgressBar",
    "load_checkpoint",
    "lr_factor",
    "save_checkpoint",
]
