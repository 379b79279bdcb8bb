"""`keras_ptft.schedules`: the learning-rate schedules — their one public path.

The formulas are tabled in `keras_ptft.training.schedules`, where the code lives; every task and
recipe sizes a schedule left open (`total_steps=None`) from its first `fit()`.

Example:
```python
import keras_ptft as kp

schedule = kp.schedules.WarmupDecay(1e-3, total_steps=1000, warmup_ratio=0.1, decay="cosine")
```
"""

from keras_ptft.training.schedules import (  # noqa: F401
    DECAYS,
    SCHEDULES,
    CosineRestarts,
    OneCycle,
    StepDecay,
    WarmupDecay,
    get,
    training_steps,
)

__all__ = ["WarmupDecay", "StepDecay", "CosineRestarts", "OneCycle", "training_steps", "get", "DECAYS", "SCHEDULES"]
