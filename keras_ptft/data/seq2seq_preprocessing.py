"""Sequence-to-sequence data: a tokenizer for two scripts, pair batches, and denoising corruption.

- `train_seq2seq_tokenizer` learns one SentencePiece unigram vocabulary over both languages, with
  byte fallback, so no character (Chinese included) ever becomes `<unk>`.
- `Seq2SeqPreprocessor` turns `{"encoder_text", "decoder_text"}` string pairs into encoder inputs,
  teacher-forced decoder inputs, next-token labels and a padding-mask sample weight (keras-hub's).
- `denoising_examples` packs monolingual text into full-length rows and corrupts spans of them,
  T5's span corruption or BART's text infilling, with the noise drawn by T5's
  `random_spans_noise_mask` rule: exactly `round(rate * n)` corrupted tokens in
  `round(noise / mean_span_length)` spans, so the rate and mean span length are exact, not expected.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.validation import check_texts

PAD, UNK, START, END, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
NUM_SENTINELS = 32
SENTINELS = tuple(f"<extra_id_{i}>" for i in range(NUM_SENTINELS))
OBJECTIVES = ("span_corruption", "text_infilling")


@keras.saving.register_keras_serializable(package="keras_ptft")
class Seq2SeqTokenizer(keras_hub.tokenizers.SentencePieceTokenizer):
    """A SentencePiece tokenizer with `<pad>`, `<s>`, `</s>` and `<mask>` as special tokens.

    Built by `train_seq2seq_tokenizer`, whose vocabulary holds `<pad>` (id 0), `<unk>`, `<s>`,
    `</s>`, `<mask>` (BART's infilling token) and T5's sentinels `<extra_id_0>`, … The sentinels
    are ordinary tokens to keras-hub, so a detokenized span-corruption target keeps them.

    Args:
        proto: bytes or str. The serialized SentencePiece model, or its file path.
        sequence_length: int or None. Pad/truncate outputs to this length.

    Example:
    ```python
    tokenizer = kp.data.train_seq2seq_tokenizer(["the cat", "猫在垫子上"] * 50, vocabulary_size=320)
    tokenizer.detokenize(tokenizer("猫 cat"))  # '猫 cat'
    ```
    """

    def __init__(self, proto=None, **kwargs):
        self._add_special_token(START, "start_token")
        self._add_special_token(END, "end_token")
        self._add_special_token(PAD, "pad_token")
        self._add_special_token(MASK, "mask_token")
        super().__init__(proto=proto, **kwargs)

    def sentinel_ids(self) -> list[int]:
        """The ids of `<extra_id_0>`, `<extra_id_1>`, … (T5's span-corruption sentinels)."""
        return [self.token_to_id(token) for token in SENTINELS]


def train_seq2seq_tokenizer(
    texts: Sequence[str],
    vocabulary_size: int,
    lowercase: bool = False,
) -> Seq2SeqTokenizer:
    """Trains one SentencePiece unigram vocabulary for both sides of a translation corpus.

    keras-hub's `compute_sentence_piece_proto` (behind `train_sentencepiece`) fixes its special ids
    and keeps SentencePiece's default character coverage of 99.95%, which maps rare Chinese
    characters to `<unk>`. This trainer asks SentencePiece for full character coverage and byte
    fallback (any character outside the vocabulary is spelled as UTF-8 bytes) and reserves the
    special tokens `Seq2SeqTokenizer` needs.

    Args:
        texts: list of str. The training corpus: give both languages, sources and targets together.
        vocabulary_size: int. The most pieces wanted, special tokens and the 256 byte pieces
            included; must exceed `261 + 32` (bytes, specials and sentinels) plus the number of
            distinct characters. A small corpus may give fewer: size the backbone with
            `tokenizer.vocabulary_size()`.
        lowercase: bool. Lower-case (and NFKC-normalise) text before training and tokenizing;
            otherwise text is kept exactly as written.

    Returns:
        A `Seq2SeqTokenizer`.

    Example:
    ```python
    tokenizer = kp.data.train_seq2seq_tokenizer(english + chinese, vocabulary_size=8000)
    ```
    """
    import io

    import sentencepiece

    reserved = 256 + 5 + NUM_SENTINELS
    if not isinstance(vocabulary_size, int) or isinstance(vocabulary_size, bool) or vocabulary_size <= reserved:
        raise ValueError(
            f"`vocabulary_size` must be an integer larger than {reserved} (256 byte pieces, 5 special "
            f"tokens and {NUM_SENTINELS} sentinels), received vocabulary_size={vocabulary_size!r}."
        )
    texts = check_texts(texts, "texts", allow_blank=False)
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type="unigram",
            character_coverage=1.0,
            byte_fallback=True,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            pad_piece=PAD, unk_piece=UNK, bos_piece=START, eos_piece=END,
            user_defined_symbols=[MASK, *SENTINELS],
            # "identity" keeps full-width Chinese punctuation (NFKC would turn "？" into "?", which
            # then never matches a reference).
            normalization_rule_name="nmt_nfkc_cf" if lowercase else "identity",
            # A small corpus may not hold `vocab_size` pieces; take what it has rather than fail.
            hard_vocab_limit=False,
            minloglevel=2,
        )
    except RuntimeError as error:  # "Vocabulary size too high" and the like
        raise ValueError(
            f"SentencePiece could not learn vocabulary_size={vocabulary_size} pieces from this corpus "
            f"(too small?): {error}"
        ) from None
    return Seq2SeqTokenizer(proto=model.getvalue())


def is_cjk(char: str) -> bool:
    """Whether `char` is a CJK ideograph (the Unicode "CJK Unified Ideographs" blocks)."""
    return unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


def chinese_coverage(tokenizer: keras.layers.Layer, texts: Sequence[str]) -> float:
    """The fraction of Chinese characters in `texts` (counted with repeats) the tokenizer keeps.

    A character is kept when tokenizing it alone gives no unknown-token id. Returns 1.0 when the
    texts hold no Chinese character.

    Example:
    ```python
    chinese_coverage(tokenizer, ["她不喜欢去学校。"])  # 1.0
    ```
    """
    counts: dict[str, int] = {}
    for text in texts:
        for char in text:
            if is_cjk(char):
                counts[char] = counts.get(char, 0) + 1
    if not counts:
        return 1.0
    unknown = _unknown_ids(tokenizer)
    chars = sorted(counts)
    kept = sum(counts[c] for c, ids in zip(chars, token_id_lists(tokenizer, chars)) if not unknown & set(ids))
    return kept / sum(counts.values())


def check_chinese_coverage(tokenizer, texts: Sequence[str], minimum: float = 0.99) -> float:
    """Raises a `ValueError` with the figure when `chinese_coverage` is below `minimum`."""
    coverage = chinese_coverage(tokenizer, texts)
    if coverage < minimum:
        raise ValueError(
            f"`tokenizer` maps Chinese characters to the unknown token: it keeps only {coverage:.1%} of "
            f"the Chinese characters in these texts (at least {minimum:.0%} needed). Train it on both "
            "languages, e.g. with kp.data.train_seq2seq_tokenizer(sources + targets, ...)."
        )
    return coverage


def _unknown_ids(tokenizer) -> set[int]:
    ids = set()
    for name in ("unk_token_id", "_unk_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None and value >= 0:
            ids.add(int(value))
    for token in ("<unk>", "[UNK]"):
        try:
            if token in tokenizer.get_vocabulary():
                ids.add(int(tokenizer.token_to_id(token)))
        except (AttributeError, ValueError):
            pass
    return ids


def token_id_lists(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Tokenizes a list of strings eagerly into Python lists of ids (no padding)."""
    ids = tokenizer(list(texts))
    if hasattr(ids, "to_list"):
        ids = ids.to_list()
    elif hasattr(ids, "numpy"):
        ids = ids.numpy().tolist()
    elif isinstance(ids, np.ndarray):
        ids = ids.tolist()
    return [list(map(int, row)) for row in ids]


@keras.saving.register_keras_serializable(package="keras_ptft")
class Seq2SeqPreprocessor(keras_hub.models.Seq2SeqLMPreprocessor):
    """String pairs → encoder inputs, teacher-forced decoder inputs, labels and sample weights.

    keras-hub's `Seq2SeqLMPreprocessor`: the source becomes `<s> source </s>` (truncated to
    `encoder_sequence_length`, end token kept), the target `<s> target </s>`; the decoder reads the
    target shifted right, the labels are the target shifted left, and the sample weight is the
    padding mask, so padding never counts in the loss. Kept as our own class so a saved task finds
    `Seq2SeqTokenizer` again.

    Args:
        tokenizer: `Seq2SeqTokenizer` (or any keras-hub tokenizer with start, end and pad ids).
        encoder_sequence_length: int. Source length; longer sources are truncated.
        decoder_sequence_length: int. Target length; longer targets are truncated.

    Example:
    ```python
    preprocessor = Seq2SeqPreprocessor(tokenizer, encoder_sequence_length=32, decoder_sequence_length=32)
    x, y, weights = preprocessor({"encoder_text": ["Hi."], "decoder_text": ["你好。"]})
    ```
    """

    tokenizer_cls = Seq2SeqTokenizer

    def get_config(self) -> dict:
        # keras-hub's base class does not save its lengths; a reloaded model would get 1024.
        config = super().get_config()
        config.update({"encoder_sequence_length": self.encoder_sequence_length,
                       "decoder_sequence_length": self.decoder_sequence_length})
        return config


def read_text_pairs(
    path,
    source_column: str | None = "english",
    target_column: str | None = "chinese",
    max_rows: int | None = None,
) -> tuple[list[str], list[str]]:
    """Reads `(sources, targets)` from a `.tsv`/`.csv` file (optionally `.gz`) with a header row.

    Other columns (e.g. Tatoeba's attribution) are ignored; rows keep the file's order. A row with
    more or fewer cells than the header, or with an empty source or target, is refused with its
    line number (the header is line 1).

    Args:
        path: str. The table.
        source_column: str or None. Header of the source column; None takes the first column.
        target_column: str or None. Header of the target column; None takes the second column.
        max_rows: int or None. Keep only the first this many rows.

    Example:
    ```python
    sources, targets = read_text_pairs(os.path.join(kp.data.shared_data_dir(), "tatoeba_cmn_eng", "dev.tsv.gz"))
    ```
    """
    import csv
    import gzip

    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    delimiter = "\t" if path.removesuffix(".gz").endswith(".tsv") else ","
    sources, targets = [], []
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = reader.fieldnames or []
            if len(header) < 2:
                raise ValueError(f"{path!r} must start with a header row of at least two columns (source and "
                                 f"target, separated by {'a tab' if delimiter == chr(9) else 'commas'}), "
                                 f"received {header}.")
            columns = []
            for column, argument, default in ((source_column, "source_column", 0), (target_column, "target_column", 1)):
                column = header[default] if column is None else column
                if column not in header:
                    raise ValueError(f"`{argument}`={column!r} is not a column of {path!r}; it has {header}.")
                columns.append(column)
            for row in reader:
                if max_rows is not None and len(sources) >= max_rows:
                    break
                line = reader.line_num
                if None in row or None in row.values():  # DictReader's marks of extra / missing cells
                    cells = len(header) + len(row.get(None, [])) - sum(value is None for value in row.values())
                    raise ValueError(f"{path!r} line {line} has {cells} cells but the header has {len(header)} "
                                     f"({header}); check the separator and quoting.")
                pair = [row[column].strip() for column in columns]
                for text, column in zip(pair, columns):
                    if not text:
                        raise ValueError(f"{path!r} line {line}: the {column!r} cell is empty; every pair needs a "
                                         "source and a target.")
                sources.append(pair[0])
                targets.append(pair[1])
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise ValueError(f"{path!r} cannot be read as UTF-8 text ({type(error).__name__}: {error}).") from None
    if not sources:
        raise ValueError(f"{path!r} holds a header but no pairs.")
    return sources, targets


# === Denoising corruption (NumPy, seeded) ===


def random_spans_mask(length: int, rate: float, mean_span_length: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean noise mask of `length` tokens with exactly `round(rate * length)` noisy tokens.

    T5's rule: the noise is split at random cut points into `round(noise / mean_span_length)`
    spans (at most 32, the number of sentinels, so a long row at a high rate gets longer spans),
    and the clean tokens into the gaps between them. Unlike T5's first version, the gaps before the
    first span and after the last may be empty, so a single span is not always at the row's end.
    """
    num_noise = min(max(int(round(rate * length)), 1), length - 1) if length > 1 else 0
    if num_noise == 0:
        return np.zeros(length, bool)
    num_clean = length - num_noise
    num_spans = max(1, min(int(round(num_noise / mean_span_length)), num_noise, num_clean, NUM_SENTINELS))

    def split(total, parts):  # `parts` positive integers summing to `total`, uniformly at random
        cuts = np.sort(rng.choice(np.arange(1, total), parts - 1, replace=False)) if parts > 1 else []
        return np.diff(np.concatenate([[0], cuts, [total]])).astype(int)

    spans = split(num_noise, num_spans)
    gaps = split(num_clean + 2, num_spans + 1)  # inner gaps >= 1, the two outer ones >= 0
    gaps[0] -= 1
    gaps[-1] -= 1
    mask = np.zeros(length, bool)
    position = 0
    for gap, span in zip(gaps, spans):
        position += gap
        mask[position : position + span] = True
        position += span
    return mask


def corrupt(ids: Sequence[int], mask: np.ndarray, objective: str, mask_id: int, sentinel_ids: Sequence[int]):
    """Applies a noise mask: returns `(source_ids, target_ids)`.

    `"span_corruption"` (T5): each noisy span becomes one sentinel in the source; the target lists
    the sentinels each followed by the tokens it replaced. `"text_infilling"` (BART): each span
    becomes one `<mask>` in the source; the target is the original sequence.
    """
    ids = np.asarray(ids)
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    span_index = np.cumsum(starts) - 1
    source, target = [], []
    for position, token in enumerate(ids):
        if not mask[position]:
            source.append(int(token))
        elif starts[position]:
            marker = sentinel_ids[span_index[position]] if objective == "span_corruption" else mask_id
            source.append(int(marker))
            if objective == "span_corruption":
                target.append(int(marker))
        if mask[position] and objective == "span_corruption":
            target.append(int(token))
    return source, (target if objective == "span_corruption" else ids.tolist())


def pack_token_ids(rows: Sequence[Sequence[int]], length: int) -> list[list[int]]:
    """Concatenates consecutive rows into chunks of at most `length` tokens (longer rows are split),
    so short sentences fill whole training rows instead of padding."""
    packed, current = [], []
    for row in rows:
        row = list(row)
        while len(row) > length:
            if current:
                packed.append(current)
                current = []
            packed.append(row[:length])
            row = row[length:]
        if len(current) + len(row) > length:
            packed.append(current)
            current = []
        current.extend(row)
    if current:
        packed.append(current)
    return [row for row in packed if row]


def denoising_examples(
    rows: Sequence[Sequence[int]],
    tokenizer,
    sequence_length: int,
    objective: str = "span_corruption",
    rate: float = 0.15,
    mean_span_length: float = 3.0,
    seed: int = 0,
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Corrupts packed token rows into `(x, y, sample_weight, noise_masks)` NumPy arrays.

    Each row of at most `sequence_length - 2` tokens (see `pack_token_ids`) is corrupted with a
    fresh `random_spans_mask`; the encoder reads `<s> source </s>`, the decoder `<s> target` and
    predicts `target </s>`. The sample weight is 1 on the target tokens and the end token and 0 on
    padding; with span corruption the target holds only the sentinels and corrupted tokens, so the
    loss never counts a token the encoder could copy. `noise_masks` (rows × `sequence_length - 2`,
    False past each row's end) says which input tokens were corrupted.

    Args:
        rows: list of lists of token ids (no start/end tokens).
        tokenizer: `Seq2SeqTokenizer`. Gives the start, end, pad, mask and sentinel ids.
        sequence_length: int. Length of the encoder and decoder rows.
        objective: str. `"span_corruption"` (T5) or `"text_infilling"` (BART).
        rate: float. Fraction of each row's tokens corrupted, in (0, 1).
        mean_span_length: float. Mean length of a corrupted span, >= 1.
        seed: int. Seeds the noise: the same seed gives the same examples.

    Example:
    ```python
    rows = pack_token_ids(token_id_lists(tokenizer, texts), 30)
    x, y, weights, masks = denoising_examples(rows, tokenizer, 32, rate=0.15, seed=0)
    ```
    """
    check_denoising_options(objective, rate, mean_span_length)
    rng = np.random.default_rng(seed)
    start, end, pad = tokenizer.start_token_id, tokenizer.end_token_id, tokenizer.pad_token_id
    sentinels = tokenizer.sentinel_ids() if hasattr(tokenizer, "sentinel_ids") else []
    if objective == "span_corruption" and len(sentinels) < NUM_SENTINELS:
        raise ValueError("`tokenizer` has no T5 sentinels; use a Seq2SeqTokenizer or objective='text_infilling'.")
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if objective == "text_infilling" and mask_id is None:
        raise ValueError("`tokenizer` has no mask token; use a Seq2SeqTokenizer or objective='span_corruption'.")
    count = len(rows)
    encoder = np.full((count, sequence_length), pad, "int32")
    decoder = np.full((count, sequence_length + 1), pad, "int32")
    masks = np.zeros((count, sequence_length - 2), bool)
    for i, row in enumerate(rows):
        row = list(row)[: sequence_length - 2]
        mask = random_spans_mask(len(row), rate, mean_span_length, rng)
        source, target = corrupt(row, mask, objective, mask_id, sentinels)
        source, target = [start, *source, end], [start, *target, end][: sequence_length + 1]
        encoder[i, : len(source)] = source
        decoder[i, : len(target)] = target
        masks[i, : len(row)] = mask
    x = {
        "encoder_token_ids": encoder,
        "encoder_padding_mask": (encoder != pad).astype("int32"),
        "decoder_token_ids": decoder[:, :-1],
        "decoder_padding_mask": (decoder[:, :-1] != pad).astype("int32"),
    }
    y = decoder[:, 1:]
    return x, y, (y != pad).astype("float32"), masks


def check_denoising_options(objective: str, rate: float, mean_span_length: float) -> None:
    """Raises a `ValueError` naming the first invalid denoising argument."""
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {list(OBJECTIVES)}, received objective={objective!r}.")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 < rate < 1.0:
        raise ValueError(f"`rate` must be a number in (0, 1), received rate={rate!r}.")
    if not isinstance(mean_span_length, (int, float)) or isinstance(mean_span_length, bool) or mean_span_length < 1:
        raise ValueError(f"`mean_span_length` must be a number >= 1, received mean_span_length={mean_span_length!r}.")
