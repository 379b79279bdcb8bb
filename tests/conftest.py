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
    # `clear_session()` after every test runs a full `gc.collect()`, which walks every object
    # alive: with TensorFlow, Keras and keras-hub imported that is ~770k objects and 0.4-0.6 s of
    # CPU per test (over 400 s across the suite). Freezing what collection imported (modules,
    # registries: never garbage) keeps the per-test collection, which then walks only the
    # objects the tests create.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


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
