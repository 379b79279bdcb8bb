"""Labeled text tables: `text<TAB>label` (TSV) or `text,label` (CSV) files, optionally gzip'd.

The format of GLUE's SST-2 and of most sentiment sets: one header row naming the columns, then one
example per row. Labels are class ids (`0`, `1`, ...) or class names (`pos`, `neg`, ...).
"""

from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

from keras_ptft.data.io import iter_lines

TEXT_COLUMNS = ("sentence", "text", "review", "content")
LABEL_COLUMNS = ("label", "labels", "class", "target")


LABEL_MODES = ("auto", "ids", "names")


def read_labeled_texts(
    path: str | os.PathLike,
    text_column: str | None = None,
    label_column: str | None = None,
    label_names: Sequence[str] | None = None,
    max_rows: int | None = None,
    seed: int | None = None,
    labels: str = "auto",
) -> tuple[list[str], np.ndarray, list[str] | None]:
    """Reads a table of `(text, label)` rows.

    The delimiter follows the extension: `.tsv` (tab) or `.csv` (comma), each optionally `.gz`.
    The first row is the header. Without `text_column`/`label_column`, the first of
    `sentence`/`text`/`review`/`content` and of `label`/`labels`/`class`/`target` are used.
    Texts are stripped (GLUE rows end with a space before the tab).

    Labels are class ids or class names, never a guess between the two: a file whose label
    column holds any integer is a file of class ids, and a cell that is not a non-negative
    integer there (a typo such as `7x`, an empty cell) is refused with its line number — one
    stray cell never turns the file into named classes with shifted ids. Named classes are read
    when every label is a name, when `labels="names"`, or when `label_names` is given.

    Args:
        path: str. The `.tsv`, `.csv`, `.tsv.gz` or `.csv.gz` file.
        text_column: str or None. Header of the text column.
        label_column: str or None. Header of the label column.
        label_names: list of str or None. Class names of a file with named labels, in class-id
            order (pass those of the training file when reading its validation file); None sorts
            the names found. Giving it reads the labels as names.
        max_rows: int or None. Keep at most this many rows (after shuffling when `seed` is given).
        seed: int or None. Shuffle the rows with this seed before cutting to `max_rows`, so a
            small sample is not just the file's first (often sorted) rows.
        labels: str. `"auto"` (class ids if any label is an integer, else class names),
            `"ids"` (every label must be a class id) or `"names"` (every label is a class name,
            even `"1"`).

    Returns:
        `(texts, labels, label_names)`: list of str, int array of class ids, and the class names
        in id order (None when the file holds class ids).

    Example:
    ```python
    texts, labels, names = kp.data.read_labeled_texts("sst2/train.tsv.gz")
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: no labeled-text file {path!r}.")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"`max_rows` must be a positive int or None, received {max_rows!r}.")
    if labels not in LABEL_MODES:
        raise ValueError(f"`labels` must be one of {list(LABEL_MODES)}, received labels={labels!r}.")
    if label_names is not None:
        if isinstance(label_names, str) or not all(isinstance(name, str) and name for name in label_names):
            raise ValueError(f"`label_names` must be a list of non-empty str, received {label_names!r}.")
        if labels == "ids":
            raise ValueError("`label_names` reads the labels as class names; it cannot be combined with "
                             "labels='ids'.")
        labels = "names"
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".tsv"):
        delimiter = "\t"
    elif stem.endswith(".csv"):
        delimiter = ","
    else:
        raise ValueError(f"{path!r} must end in .tsv, .csv, .tsv.gz or .csv.gz (the extension sets the delimiter).")
    # TSVs like GLUE's are unquoted and may hold stray quote characters in the text.
    reader = csv.reader(iter_lines(path, "path", newline=""), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path!r} is empty; expected a header row, then one example per row.")
    header = [name.strip() for name in header]
    text_index = _column(header, text_column, TEXT_COLUMNS, "text_column", path)
    label_index = _column(header, label_column, LABEL_COLUMNS, "label_column", path)
    texts, raw_labels, lines = [], [], []
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{path!r} line {line} has {len(row)} fields, the header has {len(header)} ({header})."
            )
        label = row[label_index].strip()
        if not label:
            raise ValueError(f"{path!r} line {line}: the label cell ({header[label_index]!r}) is empty.")
        texts.append(row[text_index].strip())
        raw_labels.append(label)
        lines.append(line)
    if not texts:
        raise ValueError(f"{path!r} holds a header but no examples.")
    if labels == "auto":
        labels = "ids" if any(_is_int(label) for label in raw_labels) else "names"
    if labels == "ids":
        for label, line in zip(raw_labels, lines):
            if not _is_int(label) or int(label) < 0:
                raise ValueError(
                    f"{path!r} line {line}: label {label!r} is not a class id (a non-negative integer), "
                    "and other labels of the file are. Fix the cell, or pass labels='names' if the "
                    "labels are class names."
                )
        ids = np.array([int(label) for label in raw_labels], "int64")
        names = None
    else:
        names = list(label_names) if label_names is not None else sorted(set(raw_labels))
        index = {name: i for i, name in enumerate(names)}
        for label, line in zip(raw_labels, lines):
            if label not in index:
                raise ValueError(f"{path!r} line {line}: label {label!r} is not among `label_names`={names}.")
        ids = np.array([index[label] for label in raw_labels], "int64")
    order = np.random.default_rng(seed).permutation(len(texts)) if seed is not None else np.arange(len(texts))
    order = order[:max_rows]
    return [texts[i] for i in order], ids[order], names


def _column(header: list[str], name: str | None, defaults: tuple[str, ...], argument: str, path: str) -> int:
    if name is not None:
        if name not in header:
            raise ValueError(f"`{argument}`={name!r} is not a column of {path!r}; its header is {header}.")
        return header.index(name)
    for candidate in defaults:
        if candidate in header:
            return header.index(candidate)
    raise ValueError(f"{path!r} has no column named {' / '.join(defaults)} (header: {header}); pass `{argument}`.")


def _is_int(value: str) -> bool:
    # `int()` also takes "1_000" and " 7"; a class id is plain digits, optionally signed.
    return value.lstrip("+-").isdigit() and value.isascii()
