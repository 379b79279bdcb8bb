"""`keras_ptft.callbacks`: learning-rate and fine-tuning callbacks (they live in `keras_ptft.training`).

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
)

__all__ = ["LearningRateWarmupDecay", "LearningRateLogger", "GradualUnfreezing"]
