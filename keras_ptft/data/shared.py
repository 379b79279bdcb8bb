"""Locating the project's shared dataset folder (`<repo>/../shared/data`) and reading its TSVs.

The folder sits beside the repository, not inside it, so datasets are never committed. Notebooks,
benchmarks and tests find it relative to the repository and fall back to embedded data when it is
absent (a fresh clone, a pip install elsewhere).
"""

from __future__ import annotations

import gzip
import os

import numpy as np

# Overrides the search, e.g. in CI where the data lives elsewhere.
ENVIRONMENT_VARIABLE = "KERAS_PTFT_SHARED_DATA"


def shared_data_dir(start: str | os.PathLike | None = None) -> str | None:
    """Returns the shared data folder, or None when there is none.

    The folder is `<repo>/../shared/data`, where `<repo>` is the keras_ptft checkout (the first
    folder holding `pyproject.toml` and `keras_ptft/`) above `start` or above this package.
    `$KERAS_PTFT_SHARED_DATA`, when set, is used instead of the search.

    Args:
        start: str, `os.PathLike` or None. A folder inside the repository to search upward from,
            e.g. a notebook's working directory; None uses the current directory. The package's
            own location is always searched as well.

    Returns:
        str or None. The absolute path of the folder, or None when it does not exist.

    Example:
    ```python
    data_dir = kp.data.shared_data_dir()
    if data_dir is not None:
        texts, labels = kp.data.read_labelled_tsv(os.path.join(data_dir, "sst2", "dev.tsv.gz"))
    ```
    """
    override = os.environ.get(ENVIRONMENT_VARIABLE)
    if override:
        if not os.path.isdir(override):
            raise FileNotFoundError(f"${ENVIRONMENT_VARIABLE} is {override!r}, which is not a folder.")
        return os.path.abspath(override)
    starts = [os.getcwd() if start is None else os.fspath(start), os.path.dirname(os.path.abspath(__file__))]
    for folder in starts:
        root = _repository_root(folder)
        if root is not None:
            candidate = os.path.join(os.path.dirname(root), "shared", "data")
            if os.path.isdir(candidate):
                return candidate
    return None


def read_labelled_tsv(
    path: str | os.PathLike, max_rows: int | None = None, seed: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Reads a `text<TAB>label` file (plain or `.gz`), the format of the shared sentiment sets.

    Args:
        path: str or `os.PathLike`. The file, e.g. `<shared data>/sst2/train.tsv.gz`.
        max_rows: int or None. Keep at most this many rows (after shuffling when `seed` is given).
        seed: int or None. Shuffle the rows with this seed before cutting to `max_rows`, so a
            small sample is not just the file's first (often sorted) rows.

    Returns:
        `(texts, labels)`: a list of str and an int32 array.

    Example:
    ```python
    texts, labels = kp.data.read_labelled_tsv("shared/data/sst2/dev.tsv.gz", max_rows=200, seed=0)
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path` {path!r} is not a file.")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"`max_rows` must be a positive int or None, received {max_rows!r}.")
    opener = gzip.open if path.endswith(".gz") else open
    texts, labels = [], []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            text, tab, label = line.rpartition("\t")
            if not tab or not label.strip().lstrip("-").isdigit():
                if number == 1:  # a header row such as "sentence<TAB>label"
                    continue
                raise ValueError(f"{path}:{number}: expected `text<TAB>integer label`, received {line[:80]!r}.")
            texts.append(text)
            labels.append(int(label))
    order = np.arange(len(texts))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(texts))
    if max_rows is not None:
        order = order[:max_rows]
    return [texts[i] for i in order], np.asarray(labels, dtype="int32")[order]


def _repository_root(folder: str) -> str | None:
    folder = os.path.abspath(folder)
    while True:
        if os.path.isfile(os.path.join(folder, "pyproject.toml")) and os.path.isdir(os.path.join(folder, "keras_ptft")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
