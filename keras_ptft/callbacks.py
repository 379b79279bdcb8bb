"""`keras_ptft.callbacks`: learning-rate and fine-tuning callbacks — their one public path (the
code lives in `keras_ptft.training.callbacks`; checkpointing is `kp.training.resumable_callbacks`).

Example:
```python
import keras_ptft as kp

callbacks = [kp.callbacks.LearningRateLogger(), kp.callbacks.GradualUnfreezing(classifier.backbone)]
```
"""

from keras_ptft.training.callbacks import (  # noqa: F401
    GradualUnfreezing,
    LearningRateLogger,
    LearningRateWarmupDecay,
    MagnitudePruning,
    TimeBudget,
)

__all__ = ["LearningRateLogger", "LearningRateWarmupDecay", "GradualUnfreezing", "MagnitudePruning", "TimeBudget"]
