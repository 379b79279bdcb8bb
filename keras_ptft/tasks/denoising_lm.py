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
from keras_ptft.tasks.base import TrainingMixin
from keras_ptft.tasks.masked_lm import check_packing
from keras_ptft.tasks.translator import Translator
from keras_ptft.training.shuffling import shuffled_batches
from keras_ptft.validation import check_texts

FEATURES = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")


@keras.saving.register_keras_serializable(package="keras_ptft")
class DenoisingLM(Translator):
    """Pretrains a `Seq2Seq` backbone to restore corrupted monolingual text.

    `fit(texts)` takes raw sentences in either or both languages, through the shared fit path
    (`keras_ptft.tasks.base`: validation split, schedule sizing, checkpoints, distribution). They
    are tokenized once and packed into rows of `sequence_length - 2` tokens (consecutive sentences
    share a row, so little is padding); every epoch the rows are reshuffled and each gets fresh
    noise from
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
        seed: int. Seeds the noise and the row order; the same seed gives the same corrupted
            rows. `evaluate` and validation data are corrupted once, with this seed.
        packing: bool. True (the default): consecutive sentences share a row. False: one
            sentence per row (truncated to `sequence_length - 2` tokens), padded. A run option,
            not saved with the model.
        distribution: None, `"data_parallel"` or a distribution object, as for `Translator`;
            `fit`'s `batch_size` is the global batch (a last batch that does not split evenly over
            the devices is dropped).

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
        packing: bool = True,
        **kwargs,
    ):
        check_denoising_options(objective, rate, mean_span_length)
        if seed is None:
            raise ValueError("`seed` must be an integer: it seeds the noise, received seed=None.")
        super().__init__(backbone, tokenizer=tokenizer, preprocessor=preprocessor,
                         sequence_length=sequence_length, seed=seed, **kwargs)
        self.objective, self.rate, self.mean_span_length = objective, rate, mean_span_length
        self.packing = check_packing(packing)

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

    # === The shared path's hooks ===

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        if y is None and sample_weight is None and isinstance(x, (list, tuple, np.ndarray)):
            return check_texts(x, "x", allow_blank=False), None, None
        return x, y, sample_weight  # token ids or a dataset: Keras takes them as they are

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        if y is not None or not isinstance(x, list):
            return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)
        if augment:  # `fit`'s own texts: fresh noise every epoch
            return self._noisy_batches(x, batch_size or 32, shuffle)
        x, y, weights, _ = self.examples(x)
        return shuffled_batches(x, y, weights, batch_size, shuffle=False)

    def _noisy_batches(self, texts, batch_size: int, shuffle: bool):
        """`DenoisingBatches` as a `tf.data.Dataset`: the shared path sizes schedules from its
        cardinality and filters uneven batches under a distribution, which a PyDataset offers
        neither of. tf.data calls the generator once per pass, i.e. once per epoch."""
        import itertools

        import tensorflow as tf

        batches = self.batches(texts, batch_size, shuffle=shuffle)
        passes = itertools.count()

        def epoch():
            # At the start of each later pass, not after the last batch: Keras stops asking once it
            # has the epoch's known number of batches, so code after the last `yield` never runs.
            if next(passes):
                batches.on_epoch_end()
            for index in range(len(batches)):
                yield batches[index]

        ids = tf.TensorSpec([None, self._length()], tf.int32)
        signature = ({name: ids for name in FEATURES}, ids, tf.TensorSpec([None, self._length()], tf.float32))
        dataset = tf.data.Dataset.from_generator(epoch, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(tf.data.AUTOTUNE)

    def batches(self, texts, batch_size: int = 32, shuffle: bool = True) -> "DenoisingBatches":
        """The batches `fit(texts)` trains on: packed rows, shuffled and re-corrupted every epoch."""
        return DenoisingBatches(self, self._rows(texts), batch_size, shuffle=shuffle)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        """The denoising loss and token accuracy on texts (corrupted once, with `seed`); there are
        no references to translate, so no BLEU (skips `Translator.evaluate`)."""
        return TrainingMixin.evaluate(self, x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def _length(self) -> int:
        return self.preprocessor.encoder_sequence_length

    def _rows(self, texts) -> list[list[int]]:
        texts = check_texts(texts, "x", allow_blank=False)
        check_chinese_coverage(self.preprocessor.tokenizer, texts)
        ids = [row for start in range(0, len(texts), 1024)
               for row in token_id_lists(self.preprocessor.tokenizer, texts[start : start + 1024])]
        if self.packing:
            return pack_token_ids(ids, self._length() - 2)
        return [row[: self._length() - 2] for row in ids if row]


class DenoisingBatches(keras.utils.PyDataset):
    """Batches of packed token rows for a `DenoisingLM`, shuffled and corrupted afresh every epoch.

    Epoch `e` draws its order and noise from `numpy.random.default_rng([task.seed, e])`, so a run
    is reproducible and no two epochs see the same corruption.

    Args:
        task: the `DenoisingLM` whose tokenizer, length, objective, rate and seed apply.
        rows: list of lists of token ids, each at most `sequence_length - 2` long.
        batch_size: int. Rows per batch.
        shuffle: bool. Reorder the rows every epoch (the noise is fresh either way).

    Example:
    ```python
    batches = denoiser.batches(texts, batch_size=16)
    x, y, sample_weight = batches[0]
    ```
    """

    def __init__(self, task: DenoisingLM, rows: list[list[int]], batch_size: int, shuffle: bool = True):
        super().__init__()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, received batch_size={batch_size!r}.")
        self.task, self.rows, self.batch_size, self.shuffle, self.epoch = task, rows, batch_size, shuffle, 0
        self._draw()

    def _draw(self):
        rng = np.random.default_rng([self.task.seed, self.epoch])
        order = rng.permutation(len(self.rows)) if self.shuffle else np.arange(len(self.rows))
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
