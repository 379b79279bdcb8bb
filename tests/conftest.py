import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

# A corpus where the masked word is predictable from its neighbour: "the cat sat on the mat",
# "the dog lay on the rug", ... Each animal always goes with the same place and verb.
PAIRS = [("cat", "sat", "mat"), ("dog", "lay", "rug"), ("bird", "stood", "branch"), ("fish", "swam", "pond")]
TOY_CORPUS = [f"the {animal} {verb} on the {place}" for animal, verb, place in PAIRS] * 24


@pytest.fixture
def toy_corpus():
    return list(TOY_CORPUS)


@pytest.fixture
def toy_vocabulary():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for text in TOY_CORPUS for w in text.split()})
    return specials + words + ["##s", "##ing", "cats", "big", "small", "中", "文"]


def pytest_collection_finish(session):
    # TensorFlow, keras-hub and the toolkit leave ~500k long-lived objects once the test modules
    # are imported; a full collection walks them all. Frozen, they are skipped by every later
    # collection (Python's own automatic ones during training included).
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    # free_memory=False: Keras' default runs gc.collect() after every test, which measured ~0.6 s
    # a test (a third of the suite's CPU). Python's generational collector still frees the cycles.
    keras.backend.clear_session(free_memory=False)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def _backend_servers(tmp_path_factory):
    servers = {}
    yield servers, tmp_path_factory.mktemp("backend_server")
    for server in servers.values():
        server.close()


@pytest.fixture(scope="session")
def run_on_backend(_backend_servers):
    """Runs a check function under another Keras backend (a process has one) and returns its dict.

    `run_on_backend(check, "jax", *args)` calls `check(*args)` in this pytest process's JAX server
    (`tests/backend_server.py`: one process per backend, started on first use and shared by every
    check) and returns what it returned, NumPy arrays included. A failing check fails the test
    with its traceback and the server's log. `check` is a function defined at the top level of a
    tests module imported by its dotted name (or that `"tests.x.y:function"` name); arguments must
    be JSON values or paths. Session-scoped, so module-scoped fixtures can run checks once.
    `fresh_process=True` (with `env=` for variables that must be set before the backend starts,
    such as a device count in XLA_FLAGS) runs the one check in a process of its own.
    """
    import itertools

    from tests.backend_server import BackendServer

    servers, log_dir = _backend_servers
    counter = itertools.count()

    def run(check, backend, *args, timeout=600, fresh_process=False, env=None):
        pytest.importorskip(backend, reason=f"the {backend} extra is not installed (pip install '.[{backend}]')")
        target = check if isinstance(check, str) else f"{check.__module__}:{check.__qualname__}"
        if not target.startswith("tests."):
            raise ValueError(f"`check` must live in a module importable as `tests.…` (a backend_worker file "
                             f"imported by its dotted name), got {target!r}")
        args = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in args]
        arrays_path = str(log_dir / f"{backend}_{os.getpid()}_{next(counter)}_{target.rsplit(':')[-1]}.npz")
        if fresh_process:
            server = BackendServer(backend, str(log_dir / f"{backend}_fresh_{next(counter)}.log"), env=env)
            try:
                return server.run(target, args, arrays_path, timeout)
            finally:
                server.close()
        if backend not in servers or not servers[backend].alive():
            servers[backend] = BackendServer(backend, str(log_dir / f"{backend}_server.log"))
        return servers[backend].run(target, args, arrays_path, timeout)

    return run


# The heaviest test files, heaviest first (seconds of CPU, measured with --durations on 2 cores).
# `-n 2 --dist loadfile` hands files to the two workers in collection order (pytest_configure
# below keeps xdist from re-sorting them by test count), one file at a time;
# a minute-long file collected last leaves one core idle while the other finishes it. Starting the
# long files first (longest-processing-time-first scheduling) keeps both cores busy to the end.
# The list only orders files; a file missing from it runs in pytest's usual order after these.
HEAVIEST_FIRST = [
    "tests/test_notebooks.py",
    "tests/training/test_distribution.py",
    "tests/test_quickstart.py",
    "tests/tasks/test_translator.py",
    "tests/test_cli_translate.py",
    "tests/export/test_translator_export.py",
    "tests/export/test_bad_inputs_export.py",
    "tests/training/test_training_backends.py",
    "tests/test_backends.py",
    "tests/training/test_checkpoints.py",
    "tests/models/test_vit.py",
    "tests/test_cli_compress.py",
    "tests/export/test_ner_qa_export.py",
    "tests/tasks/test_token_classifier.py",
    "tests/recipes/test_compression.py",
    "tests/recipes/test_distillation.py",
    "tests/tasks/test_masked_lm.py",
    "tests/test_cli_train.py",
    "tests/recipes/test_image_classifier.py",
]


def pytest_configure(config):
    # pytest-xdist's loadfile scheduler re-sorts files by their number of tests unless told not
    # to (`--loadscope-reorder` is its default), which undoes HEAVIEST_FIRST: the one-test files
    # (the quickstart, the CLI end-to-end runs) went last, and one core finished them alone.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(HEAVIEST_FIRST)}
    root = config.rootpath

    def file_rank(item):
        relative = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else str(item.path)
        return rank.get(relative, len(rank))

    items.sort(key=file_rank)  # stable: tests keep their order inside a file
