"""Reading the user's text files: one reader for every file `data/` opens, plain or gzip'd.

A corrupt `.gz` file fails in the middle of reading with `zlib`/`gzip` errors that do not say
which file is broken ("invalid distance too far back", "Not a gzipped file", a CRC check): every
read goes through `iter_lines`, which names the file and says what is wrong with it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence

# A string item of a corpus list that ends like this names a file, not a document.
TEXT_FILE_EXTENSIONS = (".txt", ".txt.gz", ".gz", ".tsv", ".csv", ".jsonl", ".md", ".text")


def iter_lines(path: str | os.PathLike, argument: str = "path", newline: str | None = None) -> Iterator[str]:
    """Yields the lines of a UTF-8 text file, decompressing it when its name ends in `.gz`.

    Args:
        path: str or `os.PathLike`. The file.
        argument: str. The argument (or flag) the file came from, named in errors.
        newline: str or None. As `open(newline=...)`; `""` keeps line endings as they are (what
            `csv.reader` needs).

    Yields:
        str. Each line, with its line ending.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not gzip data although named `.gz`, is truncated, fails its CRC
            check or is not UTF-8; the message names the file and the line reached.

    Example:
    ```python
    lines = [line.rstrip("\\n") for line in iter_lines("corpus.txt.gz", "corpus")]
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`{argument}`: there is no file at {path!r}.")
    compressed = path.endswith(".gz")
    line = 0
    try:
        handle = (gzip.open(path, "rt", encoding="utf-8", newline=newline) if compressed
                  else open(path, encoding="utf-8", newline=newline))
        with handle:
            for line, text in enumerate(handle, start=1):
                yield text
    except UnicodeDecodeError as error:
        raise ValueError(f"`{argument}`: {path!r} is not UTF-8 text (after line {line}: {error.reason} at byte "
                         f"{error.start} of the next line).") from None
    except EOFError:
        raise ValueError(f"`{argument}`: {path!r} is a truncated gzip file (it ends after line {line}, "
                         "before the end of its compressed data).") from None
    except gzip.BadGzipFile as error:
        if line == 0 and "Not a gzipped file" in str(error):
            raise ValueError(f"`{argument}`: {path!r} is not a gzip file although its name ends in .gz "
                             "(rename it, or compress it with gzip).") from None
        raise ValueError(f"`{argument}`: {path!r} is a corrupt gzip file (after line {line}: {error}).") from None
    except (zlib.error, OSError) as error:
        if isinstance(error, FileNotFoundError) or not compressed:
            raise
        raise ValueError(f"`{argument}`: {path!r} is a corrupt gzip file (after line {line}: {error}).") from None


def read_lines(path: str | os.PathLike, argument: str = "path", skip_blank: bool = True) -> list[str]:
    """Returns the lines of a text file (see `iter_lines`), without line endings.

    Args:
        path: str or `os.PathLike`. The file, plain or `.gz`.
        argument: str. The argument (or flag) the file came from, named in errors.
        skip_blank: bool. Leave out lines that hold only whitespace.

    Example:
    ```python
    documents = read_lines("corpus.txt.gz", "corpus")
    ```
    """
    lines = (line.rstrip("\r\n") for line in iter_lines(path, argument))
    return [line for line in lines if line.strip()] if skip_blank else list(lines)


def check_readable(paths: Sequence[str | os.PathLike], argument: str) -> None:
    """Reads each file through once, so a corrupt one is refused (by `iter_lines`) before a
    reader that does not name files (e.g. `tf.data.TextLineDataset`) streams it."""
    for path in paths:
        for _ in iter_lines(path, argument):
            pass


def text_file_paths(items: Sequence, argument: str) -> list[str] | None:
    """Decides whether a list of strings names files or holds documents.

    Strings that all name existing files (or `os.PathLike` items) are paths. Strings that all
    *look like* paths (a path separator and no whitespace, or a text-file extension such as
    `.txt`) while some do not exist are a mistake — learning a vocabulary from the characters of
    the paths would be silently wrong — and are refused. Anything else is a list of documents.

    Returns:
        The paths, or None when `items` are documents.

    Raises:
        FileNotFoundError: every item looks like a path and these do not exist (named).
    """
    items = list(items)
    if not items:
        return None
    if all(isinstance(item, os.PathLike) for item in items):
        return [os.fspath(item) for item in items]
    if not all(isinstance(item, str) for item in items):
        return None
    if all(os.path.isfile(item) for item in items):
        return items
    if all(_looks_like_path(item) for item in items):
        missing = [item for item in items if not os.path.isfile(item)]
        raise FileNotFoundError(
            f"`{argument}` looks like a list of file paths, but {len(missing)} of them are not files: "
            f"{missing[:5]}{' …' if len(missing) > 5 else ''}. (Pass documents as text, not paths.)"
        )
    return None


def _looks_like_path(item: str) -> bool:
    text = item.strip()
    if not text or "\n" in text:
        return False
    if text.lower().endswith(TEXT_FILE_EXTENSIONS) and " " not in text:
        return True
    return (os.sep in text or "/" in text) and not any(char.isspace() for char in text)
