"""Locating the project's shared dataset folder (`<repo>/../shared/data`).

The folder sits beside the repository, not inside it, so datasets are never committed. Notebooks,
benchmarks and tests find it relative to the repository and fall back to embedded data when it is
absent (a fresh clone, a pip install elsewhere).
"""

from __future__ import annotations

import os

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
        texts, labels, _ = kp.data.read_labeled_texts(os.path.join(data_dir, "sst2", "dev.tsv.gz"))
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


def _repository_root(folder: str) -> str | None:
    folder = os.path.abspath(folder)
    while True:
        if os.path.isfile(os.path.join(folder, "pyproject.toml")) and os.path.isdir(os.path.join(folder, "keras_ptft")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
