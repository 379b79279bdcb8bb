"""Translation quality: corpus BLEU and chrF computed by `sacrebleu`, and a callback reporting them.

`sacrebleu` is the reference implementation the field reports, so these functions only choose its
settings: BLEU's tokenizer is `"zh"` (every Chinese character a token) when the references hold
Chinese, else `"13a"` (sacrebleu's default); chrF is character 6-grams with beta 2. Both are on
sacrebleu's 0–100 scale. `sacrebleu` is imported when first needed (`pip install 'keras-ptft[test]'`
or `pip install sacrebleu`).
"""

from __future__ import annotations

from typing import Sequence

import keras

from keras_ptft.data.seq2seq_preprocessing import is_cjk
from keras_ptft.validation import check_texts

BLEU_TOKENIZERS = ("auto", "zh", "13a", "intl", "char", "none")


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise ImportError(
            "BLEU and chrF need the `sacrebleu` package: `pip install sacrebleu`."
        ) from None
    return sacrebleu


def _check_pair(hypotheses, references) -> tuple[list[str], list[str]]:
    hypotheses = check_texts(hypotheses, "hypotheses", allow_empty=True)
    references = check_texts(references, "references", allow_empty=True)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"`hypotheses` and `references` must have the same length, received {len(hypotheses)} "
            f"hypotheses and {len(references)} references."
        )
    return hypotheses, references


def bleu_tokenizer_for(references: Sequence[str]) -> str:
    """`"zh"` when the references contain Chinese characters, else `"13a"`."""
    return "zh" if any(is_cjk(char) for text in references for char in text) else "13a"


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "auto") -> float:
    """Corpus BLEU (0–100) of one hypothesis per reference, computed by `sacrebleu.corpus_bleu`.

    Args:
        hypotheses: list of str. The translations, one per source.
        references: list of str. One reference translation per hypothesis.
        tokenize: str. sacrebleu's tokenizer; `"auto"` picks `"zh"` for Chinese references.

    Example:
    ```python
    corpus_bleu(["她不喜欢去学校。"], ["她不喜欢上学。"])
    ```
    """
    hypotheses, references = _check_pair(hypotheses, references)
    if tokenize not in BLEU_TOKENIZERS:
        raise ValueError(f"`tokenize` must be one of {list(BLEU_TOKENIZERS)}, received tokenize={tokenize!r}.")
    tokenize = bleu_tokenizer_for(references) if tokenize == "auto" else tokenize
    return float(_sacrebleu().corpus_bleu(hypotheses, [references], tokenize=tokenize).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0–100, character 6-grams, beta 2), computed by `sacrebleu.corpus_chrf`.

    Example:
    ```python
    corpus_chrf(["她不喜欢去学校。"], ["她不喜欢上学。"])
    ```
    """
    hypotheses, references = _check_pair(hypotheses, references)
    return float(_sacrebleu().corpus_chrf(hypotheses, [references]).score)


def translation_scores(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "auto") -> dict:
    """`{"bleu": corpus_bleu(...), "chrf": corpus_chrf(...)}`."""
    return {"bleu": corpus_bleu(hypotheses, references, tokenize), "chrf": corpus_chrf(hypotheses, references)}


class TranslationScores(keras.callbacks.Callback):
    """Translates held-out sources after every `every` epochs and logs `val_bleu` and `val_chrf`.

    The model must have `translate(texts, **options)` (`keras_ptft.tasks.Translator`). The scores
    enter the epoch's logs, so `EarlyStopping(monitor="val_bleu", mode="max")` and the CSV/History
    callbacks see them.

    Args:
        sources: list of str. Held-out source sentences.
        references: list of str. One reference translation per source.
        every: int. Score every this many epochs (translation costs far more than a loss).
        prefix: str. Prefix of the logged names.
        **translate_options: passed to `translate` (e.g. `sampler="beam", num_beams=4`).

    Example:
    ```python
    scores = TranslationScores(dev_sources, dev_targets)
    translator.fit((sources, targets), epochs=5, callbacks=[scores])
    ```
    """

    def __init__(self, sources: Sequence[str], references: Sequence[str], every: int = 1, prefix: str = "val_",
                 **translate_options):
        super().__init__()
        self.sources, self.references = _check_pair(sources, references)
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer, received every={every!r}.")
        self.every, self.prefix, self.translate_options = every, prefix, translate_options

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        hypotheses = self.model.translate(self.sources, **self.translate_options)
        scores = translation_scores(hypotheses, self.references)
        if logs is not None:
            logs.update({self.prefix + name: value for name, value in scores.items()})
