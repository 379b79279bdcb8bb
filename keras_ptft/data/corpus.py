"""Embedded data: English text every Python install carries, so the main job needs no download.

The text is the documentation of the Python standard library itself: the docstrings of its
modules, classes and functions, and the help topics of `pydoc_data.topics` (the language reference
pages `help("if")` shows). It is real technical English, about a megabyte of it, and it is the
same on every machine with the same Python version, whatever else the process has imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import io
import random
import re
import warnings
from collections.abc import Iterator

import numpy as np

# The standard-library modules whose docstrings make the corpus, sorted and fixed here (not taken
# from `sys.stdlib_module_names`) so the corpus does not silently change shape between machines.
# Modules that do not exist on this platform or Python version are skipped. Left out on purpose:
# modules that act when imported (`antigravity` opens a browser, `this` and `__hello__` print,
# `readline` may write terminal escapes), GUI toolkits (`tkinter`, `turtle*`, `idlelib`), the test
# suite (`test`), and codec tables (`encodings.*`), which are boilerplate.
STDLIB_MODULES = (
    "abc", "argparse", "array", "ast", "asyncio.base_events", "asyncio.events", "asyncio.futures",
    "asyncio.locks", "asyncio.queues", "asyncio.streams", "asyncio.subprocess", "asyncio.tasks",
    "base64", "bdb", "binascii", "bisect", "builtins", "bz2", "calendar", "cmath", "cmd", "code",
    "codecs", "codeop", "collections", "collections.abc", "colorsys", "compileall",
    "concurrent.futures", "configparser", "contextlib", "contextvars", "copy", "copyreg", "csv",
    "ctypes", "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "doctest",
    "email.base64mime", "email.charset", "email.contentmanager", "email.encoders", "email.errors",
    "email.feedparser", "email.generator", "email.header", "email.headerregistry",
    "email.iterators", "email.message", "email.mime.application", "email.mime.audio",
    "email.mime.base", "email.mime.image", "email.mime.multipart", "email.mime.nonmultipart",
    "email.mime.text", "email.parser", "email.policy", "email.quoprimime", "email.utils", "enum",
    "errno", "faulthandler", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools",
    "gc", "getopt", "getpass", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac",
    "html", "html.entities", "html.parser", "http", "http.client", "http.cookiejar", "http.cookies",
    "http.server", "imaplib", "importlib", "importlib.abc", "importlib.machinery",
    "importlib.metadata", "importlib.resources", "importlib.util", "inspect", "io", "ipaddress",
    "itertools", "json", "json.decoder", "json.encoder", "keyword", "linecache", "locale",
    "logging", "logging.config", "logging.handlers", "lzma", "mailbox", "marshal", "math",
    "mimetypes", "mmap", "modulefinder", "multiprocessing", "multiprocessing.pool",
    "multiprocessing.queues", "multiprocessing.shared_memory", "netrc", "numbers", "opcode",
    "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools", "pkgutil", "platform",
    "plistlib", "poplib", "posixpath", "pprint", "profile", "pstats", "pty", "py_compile", "pyclbr",
    "pydoc", "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy", "sched",
    "secrets", "select", "selectors", "shelve", "shlex", "shutil", "signal", "site", "smtplib",
    "socket", "socketserver", "sqlite3", "ssl", "stat", "statistics", "string", "stringprep",
    "struct", "subprocess", "symtable", "sys", "sysconfig", "tabnanny", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "token", "tokenize", "tomllib", "trace", "traceback",
    "tracemalloc", "types", "typing", "unicodedata", "unittest", "unittest.case", "unittest.mock",
    "urllib.error", "urllib.parse", "urllib.request", "urllib.response", "urllib.robotparser",
    "uuid", "venv", "warnings", "wave", "weakref", "webbrowser", "wsgiref.handlers",
    "wsgiref.headers", "wsgiref.simple_server", "wsgiref.util", "wsgiref.validate",
    "xml.dom.minidom", "xml.dom.pulldom", "xml.etree.ElementTree", "xml.sax", "xml.sax.handler",
    "xml.sax.saxutils", "xml.sax.xmlreader", "xmlrpc.client", "xmlrpc.server", "zipapp", "zipfile",
    "zipimport", "zlib", "zoneinfo",
)  # fmt: skip

# The classification task: which part of the standard library a docstring documents. Four
# families whose vocabularies differ (strings and patterns / files and archives / sockets and mail
# / arithmetic), each with several hundred docstrings.
TASK_FAMILIES = {
    "text": (
        "base64", "binascii", "builtins:str", "codecs", "csv", "difflib", "gettext", "html",
        "html.entities", "html.parser", "json", "json.decoder", "json.encoder", "locale", "pprint",
        "quopri", "re", "shlex", "string", "stringprep", "textwrap", "unicodedata",
    ),
    "files": (
        "bz2", "filecmp", "fileinput", "fnmatch", "glob", "gzip", "io", "lzma", "os", "pathlib",
        "posixpath", "shutil", "stat", "tarfile", "tempfile", "zipfile",
    ),
    "network": (
        "email.charset", "email.contentmanager", "email.feedparser", "email.generator",
        "email.header", "email.headerregistry", "email.message", "email.parser", "email.policy",
        "email.utils", "ftplib", "http.client", "http.cookiejar", "http.cookies", "http.server",
        "imaplib", "ipaddress", "poplib", "smtplib", "socket", "socketserver", "ssl",
        "urllib.parse", "urllib.request", "urllib.robotparser",
    ),
    "numbers": ("cmath", "decimal", "fractions", "math", "numbers", "random", "statistics"),
}  # fmt: skip

# Documents of the unlabeled corpus hold this many words: long enough to give masked-LM context,
# short enough to fit a 128-token sequence most of the time.
MIN_DOCUMENT_WORDS = 20
MAX_DOCUMENT_WORDS = 200
# Classification examples: shorter docstrings are mostly generic ("Return self==value.") and
# longer ones are cut, since a fine-tuning sequence rarely holds more.
MIN_EXAMPLE_WORDS = 5
MAX_EXAMPLE_WORDS = 100


# eq=False: the label arrays make field-by-field `==` ambiguous.
@dataclasses.dataclass(frozen=True, eq=False)
class EmbeddedTask:
    """A small text-classification task with a fixed train/test split.

    Attributes:
        train_texts: tuple of str. The training texts.
        train_labels: `np.ndarray` of int32. The class index of each training text.
        test_texts: tuple of str. The held-out texts; none of them is also a training text.
        test_labels: `np.ndarray` of int32. The class index of each held-out text.
        label_names: tuple of str. The name of each class index.
    """

    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray
    label_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def load_embedded_corpus(
    max_documents: int | None = None, seed: int = 0, *, include_task_modules: bool = False
) -> list[str]:
    """Returns an unlabeled English corpus built from the Python standard library's documentation.

    The documents are the docstrings of the modules listed in `STDLIB_MODULES` (their public
    classes, functions and methods) and the `pydoc_data.topics` help pages, cleaned (indentation
    removed, whitespace collapsed), deduplicated paragraph by paragraph, and packed into documents
    of 20-200 words (most hold 20-60). Nothing is downloaded; the text is built in well under a
    second and cached. By default the docstrings of the classification task's modules
    (`TASK_FAMILIES`) are left out, so pretraining on this corpus never sees the texts
    `load_embedded_classification` evaluates on.

    Args:
        max_documents: int or None. Keep only the first this many documents (after shuffling);
            None keeps all of them (about 4,000 on Python 3.11).
        seed: int. Seed of the shuffle. The same seed gives the same list on every call.
        include_task_modules: bool. Also use the docstrings of the classification task's modules
            (about 50% more text), at the price of pretraining on the task's test texts.

    Returns:
        A new list of non-empty strings.

    Example:
    ```python
    import keras_ptft as kp

    corpus = kp.data.load_embedded_corpus(max_documents=1000, seed=0)
    len(corpus)  # 1000
    ```
    """
    if max_documents is not None and (
        isinstance(max_documents, bool) or not isinstance(max_documents, int) or max_documents < 1
    ):
        raise ValueError(
            "`max_documents` must be a positive int or None, received "
            f"max_documents={max_documents!r}."
        )
    documents = list(_corpus_documents(bool(include_task_modules)))
    random.Random(seed).shuffle(documents)
    return documents if max_documents is None else documents[:max_documents]


def load_embedded_classification(seed: int = 0, test_fraction: float = 0.2) -> EmbeddedTask:
    """Returns a 4-class text-classification task: which part of the standard library a docstring
    documents.

    The classes are `TASK_FAMILIES`: `"text"` (string, re, unicodedata, codecs, ...), `"files"`
    (os, pathlib, shutil, tarfile, ...), `"network"` (socket, ssl, http, urllib, email, ...) and
    `"numbers"` (math, decimal, fractions, statistics, random, ...). Each example is one docstring
    (whitespace collapsed, cut to 100 words). Docstrings found in more than one family, and those
    shorter than 5 words, are dropped; the classes are then balanced by downsampling to the
    smallest one, and split per class (stratified). Which examples are kept and how they are split
    depends on `seed` only. Many docstrings are generic ("Return the number of items."), so a
    bag-of-words model does well above chance (25%) but far from 100%.

    Args:
        seed: int. Seed of the downsampling, the split and the order of the examples.
        test_fraction: float. The fraction of each class held out for testing, in (0, 1).

    Returns:
        An `EmbeddedTask`.

    Example:
    ```python
    import keras_ptft as kp

    task = kp.data.load_embedded_classification(seed=0)
    task.label_names                              # ('text', 'files', 'network', 'numbers')
    task.train_texts[0], task.train_labels[0]
    ```
    """
    if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"`test_fraction` must be a float in (0, 1), received test_fraction={test_fraction!r}."
        )
    per_family = _task_examples()
    size = min(len(texts) for texts in per_family.values())
    if size < 2:  # only on a Python build stripped of most of its standard library
        counts = {family: len(texts) for family, texts in per_family.items()}
        raise RuntimeError(f"This Python install has too few docstrings for the task: {counts}.")
    n_test = min(size - 1, max(1, round(size * test_fraction)))
    rng = random.Random(seed)
    train, test = [], []
    for label, texts in enumerate(per_family.values()):
        chosen = rng.sample(texts, size)
        test += [(text, label) for text in chosen[:n_test]]
        train += [(text, label) for text in chosen[n_test:]]
    rng.shuffle(train)
    rng.shuffle(test)
    return EmbeddedTask(
        train_texts=tuple(text for text, _ in train),
        train_labels=np.array([label for _, label in train], dtype="int32"),
        test_texts=tuple(text for text, _ in test),
        test_labels=np.array([label for _, label in test], dtype="int32"),
        label_names=tuple(per_family),
    )


# === Building the text (cached: the module walk is the slow part) ===


@functools.lru_cache(maxsize=None)
def _corpus_documents(include_task_modules: bool) -> tuple[str, ...]:
    excluded: set[str] = set()
    if not include_task_modules:
        excluded = {
            text for sources in TASK_FAMILIES.values() for s in sources for text in _docstrings(s)
        }
    texts = [
        text for module in STDLIB_MODULES for text in _docstrings(module) if text not in excluded
    ]
    texts += [text for _, text in sorted(_topic_texts().items())]
    seen: set[str] = set()
    paragraphs = []
    for text in texts:
        for paragraph in _paragraphs(text):
            # Generic docstrings ("Return repr(self).") repeat across hundreds of classes.
            if paragraph not in seen:
                seen.add(paragraph)
                paragraphs.append(paragraph)
    # Two identical runs of short paragraphs could still pack into the same document twice.
    return tuple(dict.fromkeys(_pack(paragraphs, MIN_DOCUMENT_WORDS, MAX_DOCUMENT_WORDS)))


@functools.lru_cache(maxsize=None)
def _task_examples() -> dict[str, tuple[str, ...]]:
    families: dict[str, list[str]] = {}
    for family, sources in TASK_FAMILIES.items():
        texts = []
        for source in sources:
            for text in _docstrings(source):
                words = _collapse(text).split(" ")
                if len(words) >= MIN_EXAMPLE_WORDS:
                    texts.append(" ".join(words[:MAX_EXAMPLE_WORDS]))
        families[family] = list(dict.fromkeys(texts))
    # A docstring found in two families (e.g. an inherited "Close the file.") has no one label.
    counts: dict[str, int] = {}
    for texts in families.values():
        for text in texts:
            counts[text] = counts.get(text, 0) + 1
    return {family: tuple(t for t in texts if counts[t] == 1) for family, texts in families.items()}


@functools.lru_cache(maxsize=None)
def _docstrings(source: str) -> tuple[str, ...]:
    """The docstrings of a module (`"os"`) or of one class of it (`"builtins:str"`), in a fixed
    order; empty when the module cannot be imported here."""
    module_name, _, class_name = source.partition(":")
    # Deprecated modules (and attributes such as `typing.re`) warn when touched, and a few modules
    # print when imported; neither should reach the user.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            module = importlib.import_module(module_name)
        except Exception:  # missing on this platform or Python (e.g. no _ssl, no tomllib): skip
            return ()
        if class_name:
            return tuple(_class_docstrings(getattr(module, class_name)))
        return tuple(_module_docstrings(module))


def _module_docstrings(module) -> Iterator[str]:
    """The module's docstring, then those of the classes and functions it defines (not the ones it
    re-exports) with their methods and properties, sorted by name."""
    if isinstance(module.__doc__, str):
        yield module.__doc__
    # A C accelerator's objects report its name: `math.sqrt` is defined in "math", but `os.stat`
    # in "posix", `io.open` in "_io" and `decimal.Decimal` in "decimal" (via "_decimal").
    short = module.__name__.rsplit(".", 1)[-1]
    owners = {module.__name__, "_" + short, "_py" + short}
    if module.__name__ == "os":
        owners.add("posix")
    for name, obj in sorted(vars(module).items()):
        # Private helpers are skipped: other packages replace some of them when imported (e.g.
        # typing's), which would make the corpus depend on what else the process imported.
        if _is_private(name) or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if getattr(obj, "__module__", None) not in owners:
            continue
        if inspect.isclass(obj):
            yield from _class_docstrings(obj)
        elif (doc := _own_doc(obj)) is not None:
            yield doc


def _class_docstrings(cls: type) -> Iterator[str]:
    if isinstance(cls.__doc__, str):
        yield cls.__doc__
    for name, member in sorted(vars(cls).items()):
        if _is_private(name):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isroutine(member) or isinstance(member, property):
            doc = _own_doc(member.fget if isinstance(member, property) and member.fget else member)
            if doc is not None:
                yield doc


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_doc(obj) -> str | None:
    """The docstring `obj` was written with, or None.

    A Python function's docstring is read from its compiled code, not from `__doc__`, which other
    packages may overwrite at import time (Keras sets `LayoutMap.get.__doc__`, and that function
    is `collections.abc.Mapping.get` itself): the corpus must not depend on what else the process
    imported."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return None
    code = getattr(obj, "__code__", None)
    if code is not None:
        compiled = code.co_consts[0] if code.co_consts else None
        return compiled if isinstance(compiled, str) else None
    return doc


@functools.lru_cache(maxsize=None)
def _topic_texts() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip the help topics
        return {}
    return dict(topics)


_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", inspect.cleandoc(text)).strip()


def _paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text)):
        paragraph = _WHITESPACE.sub(" ", block).strip()
        if paragraph:
            yield paragraph


def _pack(paragraphs: list[str], min_words: int, max_words: int) -> Iterator[str]:
    """Joins consecutive paragraphs until a document holds at least `min_words` words (and never
    more than `max_words`); a paragraph longer than `max_words` is first cut at sentence ends, or
    failing that every `max_words` words. A remainder too short to stand alone is dropped."""
    pieces: list[list[str]] = []
    for paragraph in paragraphs:
        words = paragraph.split(" ")
        if len(words) <= max_words:
            pieces.append(words)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            sentence_words = sentence.split(" ")
            for start in range(0, len(sentence_words), max_words):
                pieces.append(sentence_words[start : start + max_words])
    current: list[str] = []
    for words in pieces:
        if len(current) + len(words) > max_words:
            current = []  # too short to stand alone, and joining would overflow
        current = current + words
        if len(current) >= min_words:
            yield " ".join(current)
            current = []
