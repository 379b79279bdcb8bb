"""BertPreprocessor on JAX and PyTorch, eagerly and inside tf.data; run by
tests/data/test_preprocessing.py through `run_on_backend`."""


def main(vocabulary: list) -> dict:
    import keras
    import tensorflow as tf

    from keras_ptft.data import BertPreprocessor

    preprocessor = BertPreprocessor(vocabulary, sequence_length=8)
    eager = preprocessor((["the cat sat", "Café 中文"], ["dog", "the mat"]))
    dataset = tf.data.Dataset.from_tensor_slices((["the cat sat", "Café 中文"], [0, 1])).batch(2)
    features, _ = next(iter(dataset.map(preprocessor)))
    return {
        "backend": keras.config.backend(),
        "is_backend_tensor": all(keras.ops.is_tensor(v) for v in eager.values()),
        "eager": keras.ops.convert_to_numpy(eager["token_ids"]).tolist(),
        "segments": keras.ops.convert_to_numpy(eager["segment_ids"]).tolist(),
        "tf_data": features["token_ids"].numpy().tolist(),
    }
