"""The notebooks in `notebooks/` run top to bottom without a cell error, and are committed clean.

Each notebook is executed with nbclient in a fresh `python3` kernel (ipykernel) with `notebooks/`
as the working directory, as a user opening it in Jupyter would. The notebooks check their own
key figures with `assert` cells (accuracy above the majority class, perplexity halved, int8 file
smaller), so a regression in the toolkit fails here as a cell error.
"""

import glob
import os
import shutil
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
EXPECTED = [
    "01_pretrain_bert_finetune_classifier.ipynb",
    "02_chinese_sentiment.ipynb",
    "03_gpt_pretrain_generate.ipynb",
    "04_vit_mae.ipynb",
    "05_export_mobile.ipynb",
    "06_ner_and_qa.ipynb",
    "07_translation.ipynb",
]
# The suite runs each notebook at a smaller budget than a reader's (the notebooks' own SETTINGS,
# as papermill parameters would be): a cell `SETTINGS.update(...)` goes in right after the cell
# that defines SETTINGS. Every assert cell still runs and must still hold at this budget; the
# figures the notebooks print for readers come from their own settings. What each costs here is
# mostly fixed (a kernel and its imports, ~9 s; tracing each fit's first epoch, 6-14 s), so the
# budgets cut what grows with the data: evaluation sets, the WordPiece learner's corpus (06: ~20 s
# on all of CoNLL), training pairs (07). 02 keeps its 2,000 reviews (at 1,200 it no longer beat the
# majority class) and trains on shorter windows; 05 asserts only on its exports, not on accuracy.
TEST_SETTINGS = {
    "01_pretrain_bert_finetune_classifier.ipynb": dict(pretrain_texts=1200, train_examples=2000),
    "02_chinese_sentiment.ipynb": dict(sequence_length=48, dev_examples=400),
    "03_gpt_pretrain_generate.ipynb": dict(documents=1000),
    "04_vit_mae.ipynb": dict(pretrain_images=1000, finetune_epochs=6),
    "05_export_mobile.ipynb": dict(train_examples=1000, epochs=1),
    "06_ner_and_qa.ipynb": dict(train_sentences=1200, dev_sentences=300, vocabulary_sentences=3000, qa_questions=80,
                                qa_eval_questions=40),
    "07_translation.ipynb": dict(train_pairs=1200, dev_pairs=64),
}
# Generous per cell: a loaded shared CI machine can be several times slower than a quiet one.
CELL_TIMEOUT_SECONDS = 600
# What the notebooks write next to themselves (see notebooks/.gitignore); removed after the run
# unless they were there before (a user's own run).
OUTPUT_FOLDERS = ("saved_models", "plots")


def _settings_keys(source: str) -> list[str]:
    import ast

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SETTINGS":
            return [keyword.arg for keyword in node.value.keywords]
    return []


def test_every_expected_notebook_is_present():
    assert [os.path.basename(path) for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_committed_without_outputs(path):
    nbformat = pytest.importorskip("nbformat", reason="the test extra is not installed (pip install '.[test]')")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"cells {dirty} of {os.path.basename(path)} hold outputs; strip them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_without_errors(path):
    nbformat = pytest.importorskip("nbformat", reason="the test extra is not installed (pip install '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="the test extra is not installed (pip install '.[test]')")
    notebook = nbformat.read(path, as_version=4)
    smaller = TEST_SETTINGS.get(os.path.basename(path))
    if smaller:
        defines = [i for i, cell in enumerate(notebook.cells)
                   if cell.cell_type == "code" and "SETTINGS = dict(" in cell.source]
        assert len(defines) == 1, f"{os.path.basename(path)} must define SETTINGS = dict(...) in one cell"
        unknown = set(smaller) - set(_settings_keys(notebook.cells[defines[0]].source))
        assert not unknown, f"TEST_SETTINGS names {sorted(unknown)}, which {os.path.basename(path)}'s SETTINGS lacks"
        notebook.cells.insert(defines[0] + 1, nbformat.v4.new_code_cell(f"SETTINGS.update({smaller!r})"))
    # The kernel is a child process: it inherits the environment, so make sure it imports the
    # keras_ptft under test (this checkout), whatever is installed.
    pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, pythonpath]))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # "immediate": a graceful shutdown of a kernel that has imported TensorFlow takes 1.5-2.5 s, and
    # every cell has run (and written its files) by the time the client shuts the kernel down.
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                                     shutdown_kernel="immediate", resources={"metadata": {"path": NOTEBOOK_DIR}})
    existing = [folder for folder in OUTPUT_FOLDERS if os.path.exists(os.path.join(NOTEBOOK_DIR, folder))]
    started = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{os.path.basename(path)}: a cell failed:\n{str(error)[-3000:]}", pytrace=False)
    finally:
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
        for folder in set(OUTPUT_FOLDERS) - set(existing):
            shutil.rmtree(os.path.join(NOTEBOOK_DIR, folder), ignore_errors=True)
    print(f"{os.path.basename(path)}: {time.perf_counter() - started:.0f} s")
    # The last cell of every notebook prints its own run time; a notebook that stopped early
    # (no error, but no final line) must not pass.
    last = notebook.cells[-1]
    text = "".join(output.get("text", "") for output in last.get("outputs", []))
    assert "notebook ran in" in text, f"the last cell of {os.path.basename(path)} did not finish: {text[-500:]!r}"
