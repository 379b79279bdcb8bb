"""keras_ptft: pretrain, fine-tune and deploy transformers with Keras 3.

Example:
```python
import keras_ptft as kp

vocab = kp.data.train_wordpiece(["a small corpus", "of raw strings"], vocabulary_size=100)
bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocab))
```
"""

from keras_ptft.startup import is_quiet_command, quiet_tensorflow_startup

if is_quiet_command():  # `keras-ptft ...`: TensorFlow's start-up log lines hidden unless --verbose
    quiet_tensorflow_startup()

from keras_ptft import data, models, tasks, recipes, training, export
from keras_ptft.version import __version__
from keras_ptft import convert

__all__ = ["data", "models", "tasks", "recipes", "training", "export", "__version__"]
__all__ += ["convert"]
from keras_ptft import schedules
from keras_ptft import callbacks

__all__ += ["schedules", "callbacks"]
from keras_ptft import pipelines

__all__ += ["pipelines"]
