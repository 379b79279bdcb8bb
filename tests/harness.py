"""The shared test harness, in the keras-hub manner (`keras_hub/src/tests/test_case.py`).

Tiny builders every test file uses instead of its own (`tiny_bert`, `tiny_gpt`, `tiny_vit`,
`tiny_seq2seq`; a test passes only what it needs to differ), and the checks every backbone and
task goes through:

- `run_serialization_test(instance)`: `get_config()` survives JSON and `from_config` rebuilds the
  same config.
- `run_backbone_test(cls, init_kwargs, input_data, expected_output_shape, tmp_path)`: config
  round trip, eager call with the expected shapes, shorter sequences, compiled `predict` equal to
  the eager call, and a `.keras` file and a preset folder that reload to the same outputs.
- `run_task_test(task, train_data, ...)`: one `fit` epoch with a finite loss, `predict` with the
  expected shape, config round trip, and a `.keras` file that reloads to the same predictions.
"""

import json

import keras
import numpy as np

import keras_ptft as kp


def _size(vocabulary) -> int:
    return vocabulary if isinstance(vocabulary, int) else len(vocabulary)


def tiny_bert(vocabulary=30, **overrides) -> kp.models.Bert:
    """A 1-layer BERT of width 16; `vocabulary` is a size or the vocabulary list itself; any
    constructor argument overrides."""
    config = dict(vocabulary_size=_size(vocabulary), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  max_sequence_length=16)
    return kp.models.Bert(**{**config, **overrides})


def tiny_gpt(vocabulary=40, **overrides) -> kp.models.GPT:
    """A 2-layer GPT of width 16 without dropout."""
    config = dict(vocabulary_size=_size(vocabulary), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  max_sequence_length=12, dropout=0.0)
    return kp.models.GPT(**{**config, **overrides})


def tiny_seq2seq(vocabulary=40, **overrides) -> kp.models.Seq2Seq:
    """A 2-layer encoder-decoder of width 16 without dropout."""
    config = dict(vocabulary_size=_size(vocabulary), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  max_sequence_length=12, dropout=0.0)
    return kp.models.Seq2Seq(**{**config, **overrides})


def tiny_vit(**overrides) -> kp.models.ViT:
    """A 1-layer ViT of width 8 on 8x8 RGB images in 4x4 patches."""
    config = dict(image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    return kp.models.ViT(**{**config, **overrides})


def _numpy(outputs):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def assert_all_close(got, want, atol=1e-6, what="outputs"):
    got, want = _numpy(got), _numpy(want)
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), (what, sorted(got), sorted(want))
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=atol, err_msg=f"{what}: {name}")
    else:
        np.testing.assert_allclose(got, want, atol=atol, err_msg=what)


def run_serialization_test(instance):
    """`get_config()` is JSON-serializable and `from_config` rebuilds an equal config; returns the clone."""
    config = instance.get_config()
    clone = type(instance).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    return clone


def run_backbone_test(cls, init_kwargs, input_data, expected_output_shape, tmp_path, variable_length=True,
                      preset=True):
    """Builds `cls(**init_kwargs)` and runs the checks every backbone passes; returns the backbone.

    `expected_output_shape` is a shape, or a dict of shapes for a dict of outputs. With
    `variable_length`, the backbone also runs on the first 2, 3 and 4 positions of every input
    (the second axis is the sequence axis, as for token inputs).
    """
    backbone = cls(**init_kwargs)
    run_serialization_test(backbone)

    output = backbone(input_data)
    if isinstance(expected_output_shape, dict):
        assert {name: tuple(output[name].shape) for name in expected_output_shape} == {
            name: tuple(shape) for name, shape in expected_output_shape.items()}
    else:
        assert tuple(output.shape) == tuple(expected_output_shape)
    if variable_length:
        for length in (2, 3, 4):
            shorter = keras.tree.map_structure(lambda x: x[:, :length], input_data)
            short_output = backbone(shorter)
            first = short_output[next(iter(short_output))] if isinstance(short_output, dict) else short_output
            assert first.shape[1] == length or len(first.shape) == 2, (length, first.shape)

    # The compiled predict function gives the eager outputs.
    assert_all_close(backbone.predict(input_data, verbose=0), output, atol=1e-5, what="predict vs eager")

    path = tmp_path / f"{backbone.name}.keras"
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, cls)
    assert_all_close(restored(input_data), output, what=".keras round trip")
    if preset:
        backbone.save_to_preset(str(tmp_path / f"{backbone.name}_preset"))
        loaded = kp.models.load_backbone(tmp_path / f"{backbone.name}_preset")
        assert isinstance(loaded, cls)
        assert_all_close(loaded(input_data), output, what="preset round trip")
    return backbone


def run_task_test(task, train_data, predict_data, expected_output_shape, tmp_path, batch_size=2):
    """Fits `task` one epoch on `train_data` (a tuple `(x, y)` or `x` alone), predicts
    `predict_data` (an array of the expected shape comes back), and checks its config and `.keras` round trips;
    returns the predictions."""
    x, y = train_data if isinstance(train_data, tuple) else (train_data, None)
    history = task.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all(), history.history
    predictions = task.predict(predict_data, verbose=0)
    assert tuple(np.shape(predictions)) == tuple(expected_output_shape), np.shape(predictions)
    run_serialization_test(task)
    path = tmp_path / f"{task.name}.keras"
    task.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(task)
    assert_all_close(restored.predict(predict_data, verbose=0), predictions, what=".keras round trip")
    return predictions
