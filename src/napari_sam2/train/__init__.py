"""Fine-tuning SAM 2 on stacks with label images (no napari, no Qt): see :mod:`.finetune`."""

from .finetune import TrainSettings, finetune

__all__ = ["TrainSettings", "finetune"]
