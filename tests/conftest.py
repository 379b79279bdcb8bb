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


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_on_backend():
    """Runs a worker script under another Keras backend (a process has one) and fails the test
    with the worker's stderr when it fails. The worker imports the same keras_ptft as the tests.

    Usage: `run_on_backend(worker_path, "jax", work_dir)`.
    """
    import subprocess
    import sys

    def run(script, backend, *args, timeout=600):
        pytest.importorskip(backend, reason=f"the {backend} extra is not installed (pip install '.[{backend}]')")
        pythonpath = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": pythonpath}
        result = subprocess.run([sys.executable, str(script), *map(str, args)], env=env, capture_output=True,
                                text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr[-4000:]
        return result

    return run
