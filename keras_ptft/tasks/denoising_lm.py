"""Denoising pretraining of an encoder–decoder: T5 span corruption or BART text infilling."""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_ptft.data.seq2seq_preprocessing import (
    check_chinese_coverage,
    check_denoising_options,
    denoising_examples,
    pack_token_ids,
    token_id_lists,
)
from keras_ptft.tasks.translator import Translator
from keras_ptft.validation import check_texts


@keras.saving.register_keras_serializable(package="keras_ptft")
class DenoisingLM(Translator):
    """Pretrains a `Seq2Seq` backbone to restore corrupted monolingual text.

    `fit(texts)` takes raw sentences in either or both languages. They are tokenized once and
    packed into rows of `sequence_length - 2` tokens (consecutive sentences share a row, so little
    is padding); every epoch each row gets fresh noise from
    `keras_ptft.data.seq2seq_preprocessing.random_spans_mask` (exactly `round(rate * n)`
    corrupted tokens in spans of mean length `mean_span_length`), seeded by `seed` and the epoch.

    - `objective="span_corruption"` (T5): each span becomes a sentinel `<extra_id_k>` in the
      source; the target is the sentinels each followed by the tokens it hid. The loss counts
      only those target tokens and the end token — never a token the encoder can copy.
    - `objective="text_infilling"` (BART): each span becomes one `<mask>`; the target is the
      whole original row, all of which counts.

    Padding never counts. The backbone then fine-tunes as a translator
    (`save_to_preset(path)`, then `kp.recipes.translator(path)`); being a `Translator`, this task
    can also `translate` a corrupted text, i.e. fill in its gaps.

    Args:
        backbone: `keras_ptft.models.Seq2Seq`.
        tokenizer: `keras_ptft.data.Seq2SeqTokenizer` (it holds `<mask>` and the sentinels).
        preprocessor: a `Seq2SeqPreprocessor`, or None to build one from `tokenizer`.
        sequence_length: int. Encoder and decoder row length.
        objective: str. `"span_corruption"` or `"text_infilling"`.
        rate: float. Fraction of tokens corrupted, in (0, 1). T5 uses 0.15, BART 0.3.
        mean_span_length: float. Mean corrupted-span length, >= 1. T5 uses 3, BART ~3.
        seed: int. Seeds the noise; the same seed gives the same corrupted rows.

    Example:
    ```python
    import keras_ptft as kp

    texts = ["the cat sat on the mat", "猫坐在垫子上"] * 32
    tokenizer = kp.data.train_seq2seq_tokenizer(texts, vocabulary_size=320)
    model = kp.models.Seq2Seq(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
                              hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    denoiser = kp.tasks.DenoisingLM(model, tokenizer, sequence_length=32, rate=0.15)
    denoiser.compile()
    denoiser.fit(texts, epochs=2, batch_size=8)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        tokenizer: keras.layers.Layer | None = None,
        preprocessor: keras.layers.Layer | None = None,
        sequence_length: int = 64,
        objective: str = "span_corruption",
        rate: float = 0.15,
        mean_span_length: float = 3.0,
        seed: int = 0,
        **kwargs,
    ):
        check_denoising_options(objective, rate, mean_span_length)
        super().__init__(backbone, tokenizer=tokenizer, preprocessor=preprocessor,
                         sequence_length=sequence_length, **kwargs)
        self.objective, self.rate, self.mean_span_length, self.seed = objective, rate, mean_span_length, seed

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"objective": self.objective, "rate": self.rate, "mean_span_length": self.mean_span_length,
                       "seed": self.seed})
        return config

    def examples(self, texts, seed: int | None = None):
        """Packs and corrupts `texts` once: `(x, y, sample_weight, noise_masks)` NumPy arrays (see
        `keras_ptft.data.denoising_examples`)."""
        return denoising_examples(self._rows(texts), self.preprocessor.tokenizer, self._length(),
                                  self.objective, self.rate, self.mean_span_length,
                                  self.seed if seed is None else seed)

    def fit(self, x=None, y=None, batch_size=None, validation_data=None, **kwargs):
        if y is not None or not isinstance(x, (list, tuple, np.ndarray)):
            return keras.Model.fit(self, x, y, batch_size=batch_size, validation_data=validation_data, **kwargs)
        batches = self.batches(x, batch_size or 32)
        if validation_data is not None:
            validation_data = self.examples(validation_data, seed=self.seed + 1)[:3]
        return keras.Model.fit(self, batches, validation_data=validation_data, **kwargs)

    def batches(self, texts, batch_size: int = 32) -> "DenoisingBatches":
        """The `keras.utils.PyDataset` that `fit(texts)` trains on: packed rows, shuffled and
        re-corrupted every epoch."""
        return DenoisingBatches(self, self._rows(texts), batch_size)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        if y is not None or not isinstance(x, (list, tuple, np.ndarray)):
            return keras.Model.evaluate(self, x, y, batch_size=batch_size, **kwargs)
        x, y, weights, _ = self.examples(x)
        return keras.Model.evaluate(self, x, y, sample_weight=weights, batch_size=batch_size or 32, **kwargs)

    def _length(self) -> int:
        return self.preprocessor.encoder_sequence_length

    def _rows(self, texts) -> list[list[int]]:
        texts = check_texts(texts, "x", allow_blank=False)
        check_chinese_coverage(self.preprocessor.tokenizer, texts)
        ids = [row for start in range(0, len(texts), 1024)
               for row in token_id_lists(self.preprocessor.tokenizer, texts[start : start + 1024])]
        return pack_token_ids(ids, self._length() - 2)


class DenoisingBatches(keras.utils.PyDataset):
    """Batches of packed token rows for a `DenoisingLM`, shuffled and corrupted afresh every epoch.

    Epoch `e` draws its order and noise from `numpy.random.default_rng([task.seed, e])`, so a run
    is reproducible and no two epochs see the same corruption.

    Args:
        task: the `DenoisingLM` whose tokenizer, length, objective, rate and seed apply.
        rows: list of lists of token ids, each at most `sequence_length - 2` long.
        batch_size: int. Rows per batch.

    Example:
    ```python
    batches = denoiser.batches(texts, batch_size=16)
    x, y, sample_weight = batches[0]
    ```
    """

    def __init__(self, task: DenoisingLM, rows: list[list[int]], batch_size: int):
        super().__init__()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, received batch_size={batch_size!r}.")
        self.task, self.rows, self.batch_size, self.epoch = task, rows, batch_size, 0
        self._draw()

    def _draw(self):
        rng = np.random.default_rng([self.task.seed, self.epoch])
        order = rng.permutation(len(self.rows))
        self.x, self.y, self.weights, _ = denoising_examples(
            [self.rows[i] for i in order], self.task.preprocessor.tokenizer, self.task.preprocessor.encoder_sequence_length,
            self.task.objective, self.task.rate, self.task.mean_span_length, int(rng.integers(2**31)),
        )

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return {k: v[batch] for k, v in self.x.items()}, self.y[batch], self.weights[batch]

    def on_epoch_end(self):
        self.epoch += 1
        self._draw()
