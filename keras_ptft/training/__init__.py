"""Training utilities: optimizers, schedules, callbacks."""

from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.training.schedules import CosineRestarts, OneCycle, StepDecay, training_steps

__all__ = ["make_adamw", "default_compile_kwargs", "WarmupDecay"]
__all__ += ["StepDecay", "CosineRestarts", "OneCycle", "training_steps"]
from keras_ptft.training.lr_finder import find_learning_rate
from keras_ptft.training.plots import plot_history
__all__ += ["find_learning_rate", "plot_history"]
from keras_ptft.training.checkpoints import load_history, resumable_callbacks
__all__ += ["resumable_callbacks", "load_history"]
from keras_ptft.training.model_selection import cross_validate, search
__all__ += ["cross_validate", "search"]
