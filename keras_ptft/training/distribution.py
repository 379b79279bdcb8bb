"""One `distribution=` switch over the engines Keras and TensorFlow ship; no communication code here.

| backend | `"data_parallel"` | `"model_parallel"` |
|---|---|---|
| JAX | `keras.distribution.DataParallel` over the devices | `keras.distribution.ModelParallel` on a `(batch, model)` mesh with the backbone's `get_layout_map` (Bert, GPT, ViT; refused for Seq2Seq, which has none) |
| TensorFlow | `tf.distribute.MirroredStrategy` over the devices (logical CPUs are made when asked for more than one CPU) | refused: Keras' TF distribution backend is a prototype |
| PyTorch | refused: `keras.distribution` on torch is on Keras master, not in a release (Keras 3.15) | refused |

A `keras.distribution.Distribution` (JAX) or a `tf.distribute.Strategy` (TensorFlow) object is
accepted as is. With any of them `fit` takes the *global* batch size, which must divide by the
number of devices (Keras itself can fail with a ZeroDivisionError there, keras #21167).

Multi-host: on JAX call `keras.distribution.initialize(...)` (it runs `jax.distributed.initialize`)
in every process first, then the same `distribution="data_parallel"`; each process feeds its own
shard of the data. TensorFlow multi-worker training is not supported by Keras 3 (keras #20585):
use the JAX backend for more than one host.
"""

from __future__ import annotations

import contextlib
import functools
import random

import keras
import numpy as np

NAMES = {"data_parallel": "data_parallel", "data": "data_parallel",
         "model_parallel": "model_parallel", "model": "model_parallel"}
_TORCH_MESSAGE = (
    "`distribution` is not available on the torch backend: keras.distribution supports torch only on "
    "Keras master, unreleased as of Keras {version}. Use the JAX backend (KERAS_BACKEND=jax) for "
    "distributed training, or pass distribution=None."
)


def resolve_distribution(distribution, *, devices: int | None = None, backbone=None, model_axis_size: int | None = None):
    """What `distribution=` means on the current backend.

    Args:
        distribution: None, `"data_parallel"` (or `"data"`), `"model_parallel"` (or `"model"`), a
            `keras.distribution.Distribution` (JAX) or a `tf.distribute.Strategy` (TensorFlow).
        devices: int or None. How many devices to use; None uses all there are.
        backbone: the backbone (or its class) whose `get_layout_map` model parallelism uses.
        model_axis_size: int or None. With `"model_parallel"`, the size of the mesh's model axis
            (default: all devices, i.e. a `(1, devices)` mesh).

    Returns:
        None, a `keras.distribution.Distribution` or a `tf.distribute.Strategy`.

    Example:
    ```python
    # JAX, in a process started with XLA_FLAGS=--xla_force_host_platform_device_count=2
    distribution = resolve_distribution("data_parallel")
    with distribution_scope(distribution):
        classifier = kp.recipes.text_classifier(...)
    ```
    """
    if distribution is None:
        return None
    backend = keras.backend.backend()
    if isinstance(distribution, str):
        if distribution not in NAMES:
            raise ValueError(f"`distribution` must be one of {sorted(set(NAMES))}, None or a distribution "
                             f"object; received distribution={distribution!r}.")
        name = NAMES[distribution]
        if backend == "torch":
            raise ValueError(_TORCH_MESSAGE.format(version=keras.__version__))
        if backend == "tensorflow":
            if name == "model_parallel":
                raise ValueError("`distribution='model_parallel'` needs the JAX backend: Keras' TensorFlow "
                                 "distribution support is a prototype. Use distribution='data_parallel' on TensorFlow.")
            return _mirrored_strategy(devices)
        if backend == "jax":
            available = keras.distribution.list_devices()
            count = _device_count(devices, len(available))
            if name == "data_parallel":
                return keras.distribution.DataParallel(devices=available[:count])
            return _model_parallel(backbone, available[:count], model_axis_size)
        raise ValueError(f"`distribution` is not supported on the {backend!r} backend.")
    if _is_keras_distribution(distribution):
        if backend != "jax":
            raise ValueError(f"A keras.distribution.{type(distribution).__name__} needs the JAX backend in Keras "
                             f"{keras.__version__}; this process runs {backend!r}.")
        return distribution
    if _is_tf_strategy(distribution):
        if backend != "tensorflow":
            raise ValueError(f"A tf.distribute strategy needs the TensorFlow backend; this process runs {backend!r}.")
        return distribution
    raise TypeError("`distribution` must be None, a name, a keras.distribution.Distribution or a "
                    f"tf.distribute.Strategy; received {type(distribution).__name__}.")


def num_replicas(distribution) -> int:
    """How many data-parallel replicas a resolved distribution splits the global batch over."""
    if distribution is None:
        return 1
    if _is_tf_strategy(distribution):
        return int(distribution.num_replicas_in_sync)
    mesh = distribution.device_mesh
    batch_axis = getattr(distribution, "batch_dim_name", None) or mesh.axis_names[0]
    return int(dict(zip(mesh.axis_names, mesh.shape))[batch_axis])


def check_global_batch_size(batch_size: int, distribution) -> None:
    """Raises a `ValueError` when the global batch does not split evenly over the replicas.

    Example:
    ```python
    check_global_batch_size(32, resolve_distribution("data_parallel"))
    ```
    """
    replicas = num_replicas(distribution)
    if batch_size is not None and batch_size % replicas:
        raise ValueError(f"The global `batch_size`={batch_size} must be divisible by the number of devices "
                         f"({replicas}) the distribution splits it over.")


def drop_uneven_batches(dataset, distribution):
    """`dataset` without the batches whose size does not divide by the replicas (the last, short
    batch of an epoch or of a length bucket): under a distribution every batch is split evenly over
    the devices, and JAX refuses an uneven split. tf.distribute's `drop_remainder` does the same."""
    replicas = num_replicas(distribution)
    if replicas == 1 or not hasattr(dataset, "filter"):
        return dataset
    import tensorflow as tf

    def splits_evenly(*batch):
        return tf.equal(tf.shape(tf.nest.flatten(batch)[0])[0] % replicas, 0)

    return dataset.filter(splits_evenly)


def distribution_scope(distribution):
    """The context under which a model must be built (and compiled) to be distributed."""
    if distribution is None:
        return contextlib.nullcontext()
    return distribution.scope()


def distributed_copy(model: keras.Model, distribution) -> keras.Model:
    """`model` re-created under `distribution` with the same weights (or `model` itself when
    `distribution` is None).

    Both engines place a variable when it is created (sharded or replicated over the mesh, or
    mirrored), so a backbone built before the distribution was chosen is rebuilt from its config
    inside the scope and its weights are copied in.

    Example:
    ```python
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=1000)
    sharded = distributed_copy(bert, resolve_distribution("model_parallel", backbone=bert))
    ```
    """
    if distribution is None:
        return model
    if type(distribution).__name__ == "ModelParallel" and _is_keras_distribution(distribution):
        from keras_ptft.models.layout import check_layout_map

        check_layout_map(distribution._layout_map, model)
    # Keras draws an unseeded initializer's seed from Python's `random` when the initializer is
    # made, so rebuilding the copy would shift the seeds of every layer made after it (a task's
    # head): the same `keras.utils.set_random_seed` would then give other starting weights on N
    # devices than on one. The copy's initial values are overwritten anyway; keep the RNG state.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with distribution_scope(distribution):
        copy = type(model).from_config(model.get_config())
        copy.set_weights(model.get_weights())
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    return copy


def distributable(init):
    """Decorates a task's `__init__(self, backbone, ...)` to accept `distribution=`.

    The distribution is resolved for the backbone, the backbone is re-created under it
    (`distributed_copy`) and the whole constructor runs inside its scope, so the task's own layers
    are placed (sharded, replicated or mirrored) as they are made. The resolved distribution is
    kept as `task.distribution`, a run option: it is not part of `get_config`.
    """

    @functools.wraps(init)
    def wrapper(self, backbone, *args, distribution=None, **kwargs):
        resolved = resolve_distribution(distribution, backbone=backbone)
        backbone = distributed_copy(backbone, resolved)
        with distribution_scope(resolved):
            init(self, backbone, *args, **kwargs)
        self.distribution = resolved

    return wrapper


def describe(distribution) -> str:
    """A one-line description (the mesh and its devices), e.g. for the CLI to print."""
    if distribution is None:
        return "one device"
    if _is_tf_strategy(distribution):
        return f"{type(distribution).__name__} over {list(distribution.extended.worker_devices)}"
    mesh = distribution.device_mesh
    shape = ", ".join(f"{name}={size}" for name, size in zip(mesh.axis_names, mesh.shape))
    return f"{type(distribution).__name__} on a mesh ({shape}) of {mesh.devices.size} devices"


def _device_count(devices, available: int) -> int:
    if devices is None:
        return available
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ValueError(f"`devices` must be a positive integer, received devices={devices!r}.")
    if devices > available:
        raise ValueError(f"`devices`={devices} but this process has {available} device(s). On a CPU, start the "
                         f"process with XLA_FLAGS=--xla_force_host_platform_device_count={devices} (JAX).")
    return devices


def _model_parallel(backbone, devices, model_axis_size):
    if backbone is None or not hasattr(backbone, "get_layout_map"):
        # Seq2Seq has no layout map: its cached decoding has not been checked with sharded weights.
        what = "no backbone" if backbone is None else (backbone if isinstance(backbone, type) else type(backbone)).__name__
        raise ValueError("`distribution='model_parallel'` needs a backbone with `get_layout_map` (Bert, GPT, ViT); "
                         f"received {what}. Use distribution='data_parallel' for it.")
    model_axis_size = len(devices) if model_axis_size is None else model_axis_size
    if model_axis_size < 1 or len(devices) % model_axis_size:
        raise ValueError(f"`model_axis_size`={model_axis_size} does not divide the {len(devices)} devices into a "
                         "(batch, model) mesh.")
    mesh = keras.distribution.DeviceMesh((len(devices) // model_axis_size, model_axis_size),
                                         ["batch", "model"], devices)
    return keras.distribution.ModelParallel(layout_map=backbone.get_layout_map(mesh), batch_dim_name="batch")


def _mirrored_strategy(devices):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        return tf.distribute.MirroredStrategy(devices=gpus[:_device_count(devices, len(gpus))])
    if devices is not None and _device_count(devices, devices) > 1:
        try:
            # A CPU is one device until split into logical ones, which TensorFlow allows only
            # before its runtime starts; afterwards the devices it already has are used.
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
        except RuntimeError:
            pass
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    if devices is not None and devices > len(cpus):
        raise ValueError(f"`devices`={devices} but TensorFlow already started with {len(cpus)} CPU device(s); "
                         "ask for the devices before any TensorFlow work in the process.")
    return tf.distribute.MirroredStrategy(devices=cpus[: devices or len(cpus)])


def _is_keras_distribution(value) -> bool:
    # By duck type: keras.distribution exports its Distribution base class only on some backends.
    return type(value).__module__.startswith("keras") and hasattr(value, "device_mesh") and hasattr(value, "scope")


def _is_tf_strategy(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "num_replicas_in_sync")
