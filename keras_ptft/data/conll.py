"""CoNLL column files (one token per line, a blank line between sentences), optionally gzip'd.

The CoNLL-2003 layout is `word POS chunk NER`; other CoNLL-style files have two columns
(`word tag`) or more. `read_conll` keeps the word column and one tag column (the last by default).
"""

from __future__ import annotations

import gzip
import os

DOCUMENT_MARKER = "-DOCSTART-"


def read_conll(
    path: str | os.PathLike,
    tag_column: int = -1,
    word_column: int = 0,
    separator: str | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """Reads a CoNLL file into sentences of words and their tags.

    Lines starting with `-DOCSTART-` (document markers) are skipped and end the sentence before
    them; blank lines end a sentence. Every non-blank line must have as many columns as the first
    one.

    Args:
        path: str or `os.PathLike`. A `.txt`/`.conll` file, or the same gzip'd (`.gz`).
        tag_column: int. Index of the tag column; the last one (-1, the NER tags of CoNLL-2003)
            by default.
        word_column: int. Index of the word column.
        separator: str or None. Column separator; None splits on any run of whitespace.

    Returns:
        `(words, tags)`: two lists with one entry per sentence, each a list of str of the same
        length — what `TokenClassifier.fit` takes.

    Raises:
        ValueError: a line with a different number of columns, or too few for the columns asked
            for (the message gives the line number, counting from 1).

    Example:
    ```python
    words, tags = kp.data.read_conll("conll2003/dev.txt.gz")
    words[0], tags[0]  # (['CRICKET', '-', 'LEICESTERSHIRE', ...], ['O', 'O', 'B-ORG', ...])
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: no CoNLL file {path!r}.")
    for name, value in (("tag_column", tag_column), ("word_column", word_column)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"`{name}` must be an int (a column index), received {value!r}.")
    opener = gzip.open if path.endswith(".gz") else open
    sentences, tags = [], []
    words_now, tags_now = [], []
    columns = None

    def end_sentence():
        if words_now:
            sentences.append(list(words_now))
            tags.append(list(tags_now))
            words_now.clear()
            tags_now.clear()

    with opener(path, "rt", encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                end_sentence()
                continue
            if line.startswith(DOCUMENT_MARKER):
                end_sentence()
                continue
            fields = line.split(separator)
            if columns is None:
                columns = len(fields)
                for name, index in (("tag_column", tag_column), ("word_column", word_column)):
                    if not -columns <= index < columns:
                        raise ValueError(
                            f"`{name}`={index} is outside the {columns} columns of {path!r} "
                            f"(line {number}: {line!r:.80})."
                        )
                if columns < 2:
                    raise ValueError(
                        f"{path!r} line {number}: a CoNLL line needs a word and a tag column, "
                        f"received {columns} column: {line!r:.80}."
                    )
            if len(fields) != columns:
                raise ValueError(
                    f"{path!r} line {number}: expected {columns} columns like the first line, "
                    f"received {len(fields)}: {line!r:.80}."
                )
            words_now.append(fields[word_column])
            tags_now.append(fields[tag_column])
    end_sentence()
    return sentences, tags
