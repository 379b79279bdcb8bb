"""Training utilities: optimizers, checkpoints, learning-rate finder, model selection, plots.

One public path per thing: schedules are `keras_ptft.schedules` (`kp.schedules.WarmupDecay`, ...)
and callbacks `keras_ptft.callbacks`; their code lives in `keras_ptft.training.schedules` /
`keras_ptft.training.callbacks`. The schedule names once exported here (`kp.training.WarmupDecay`,
...) still resolve, with a `DeprecationWarning`.
"""

import warnings

from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.lr_finder import find_learning_rate
from keras_ptft.training.plots import plot_history
from keras_ptft.training.checkpoints import load_history, resumable_callbacks
from keras_ptft.training.model_selection import cross_validate, search

__all__ = ["make_adamw", "default_compile_kwargs", "find_learning_rate", "plot_history"]
__all__ += ["resumable_callbacks", "load_history", "cross_validate", "search"]

_MOVED_TO_SCHEDULES = ("WarmupDecay", "StepDecay", "CosineRestarts", "OneCycle", "training_steps")


def __getattr__(name):
    if name in _MOVED_TO_SCHEDULES:
        warnings.warn(f"`keras_ptft.training.{name}` is deprecated; use `keras_ptft.schedules.{name}`.",
                      DeprecationWarning, stacklevel=2)
        from keras_ptft.training import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'keras_ptft.training' has no attribute {name!r}")
