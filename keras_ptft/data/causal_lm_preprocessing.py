"""Strings → next-token-prediction batches for causal language models."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf
from keras_hub.layers import StartEndPacker
from keras_hub.src.utils.tensor_utils import preprocessing_function


@keras.saving.register_keras_serializable(package="keras_ptft")
class CausalLMPreprocessor(keras_hub.models.CausalLMPreprocessor):
    """keras-hub's causal-LM preprocessor, plus (prompt, response) pairs with a response-only loss.

    Plain strings become `token_ids` / `padding_mask` inputs, the next tokens as labels and the
    padding mask as sample weight (so padding never counts in the loss), exactly as keras-hub does.
    A dict `{"prompts": [...], "responses": [...]}` is packed as `start + prompt + response + end`,
    and the sample weight is 1 only where the *label* is a response token (or the end token):
    the model sees the prompt but is never trained to produce it (instruction / dialogue tuning).

    Args:
        tokenizer: a keras-hub tokenizer with `start_token_id`, `end_token_id` and `pad_token_id`
            (e.g. `keras_ptft.data.bpe_tokenizer(...)`).
        sequence_length: int. Model input length; longer examples are truncated.
        add_start_token: bool. Prepend the start token.
        add_end_token: bool. Append the end token.

    Example:
    ```python
    vocab, merges = kp.data.train_bpe(texts, vocabulary_size=300)
    preprocessor = CausalLMPreprocessor(kp.data.bpe_tokenizer(vocab, merges), sequence_length=32)
    x, y, weights = preprocessor({"prompts": ["2+2="], "responses": ["4"]})
    ```
    """

    def build(self, input_shape):
        super().build(input_shape)
        # Packs the 0/1 "is a response token" mask exactly like the token ids; the end token is a
        # response token (the model must learn to stop).
        self.response_packer = StartEndPacker(
            start_value=0, end_value=1, pad_value=0, sequence_length=self.sequence_length
        )

    def call(self, x, y=None, sample_weight=None, sequence_length=None):
        if isinstance(x, dict) and set(x) == {"prompts", "responses"}:
            if not self.built:
                self.build(None)
            return self._call_pairs(x, y=y, sample_weight=sample_weight, sequence_length=sequence_length)
        if isinstance(x, dict) and ("prompts" in x or "responses" in x):
            raise ValueError(
                "A dict input must have exactly the keys 'prompts' and 'responses', received "
                f"keys {sorted(x)}."
            )
        return super().call(x, y=y, sample_weight=sample_weight, sequence_length=sequence_length)

    @preprocessing_function
    def _call_pairs(self, x, y=None, sample_weight=None, sequence_length=None):
        sequence_length = (sequence_length or self.sequence_length) + 1
        prompts = _as_ragged_batch(self.tokenizer(x["prompts"]))
        responses = _as_ragged_batch(self.tokenizer(x["responses"]))
        token_ids, padding_mask = self.packer(
            tf.concat([prompts, responses], axis=1),
            sequence_length=sequence_length,
            add_start_value=self.add_start_token,
            add_end_value=self.add_end_token,
        )
        is_response = tf.concat([tf.zeros_like(prompts), tf.ones_like(responses)], axis=1)
        is_response = self.response_packer(
            is_response,
            sequence_length=sequence_length,
            add_start_value=self.add_start_token,
            add_end_value=self.add_end_token,
        )
        x = {"token_ids": token_ids[..., :-1], "padding_mask": padding_mask[..., :-1]}
        return keras.utils.pack_x_y_sample_weight(x, token_ids[..., 1:], is_response[..., 1:])


def _as_ragged_batch(ids) -> tf.RaggedTensor:
    # Tokenizers return a ragged batch, a dense row for one string, or (outside tf.data) lists.
    if isinstance(ids, list):
        ids = tf.ragged.constant(ids if ids and isinstance(ids[0], list) else [ids], dtype="int32")
    if isinstance(ids, tf.Tensor):
        ids = tf.RaggedTensor.from_tensor(ids[tf.newaxis] if ids.shape.rank == 1 else ids)
    return ids
