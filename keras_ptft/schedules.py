"""`keras_ptft.schedules`: the learning-rate schedules (they live in `keras_ptft.training`).

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
