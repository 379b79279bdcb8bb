import gzip
import os

import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.data.shared import ENVIRONMENT_VARIABLE

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)


def _fake_checkout(root):
    """`root/repo` shaped like a keras_ptft checkout, with `root/shared/data` beside it."""
    repo = root / "repo"
    (repo / "keras_ptft").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\n")
    (repo / "notebooks").mkdir()
    return repo


def test_finds_the_folder_beside_the_checkout_from_a_subfolder(tmp_path):
    repo = _fake_checkout(tmp_path)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert kp.data.shared_data_dir(repo / "notebooks") == str(tmp_path / "shared" / "data")


def test_returns_none_without_a_shared_folder(tmp_path, monkeypatch):
    repo = _fake_checkout(tmp_path)
    # The package's own location is searched too; make it look like an installed package.
    monkeypatch.setattr("keras_ptft.data.shared.__file__", str(tmp_path / "site-packages" / "keras_ptft" / "x.py"))
    assert kp.data.shared_data_dir(repo / "notebooks") is None


def test_environment_variable_overrides_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path))
    assert kp.data.shared_data_dir() == str(tmp_path)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=ENVIRONMENT_VARIABLE):
        kp.data.shared_data_dir()


def test_finds_the_projects_shared_data_from_the_repository():
    if not os.path.isdir(SHARED):
        pytest.skip("the shared data folder is absent")
    assert os.path.samefile(kp.data.shared_data_dir(os.path.join(REPO_ROOT, "notebooks")), SHARED)


def test_read_labelled_tsv_skips_header_and_shuffles_reproducibly(tmp_path):
    path = tmp_path / "train.tsv.gz"
    rows = [(f"text number {i}\twith tab", i % 2) for i in range(20)]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("sentence\tlabel\n")
        handle.writelines(f"{text}\t{label}\n" for text, label in rows)
    texts, labels = kp.data.read_labelled_tsv(path)
    assert texts == [text for text, _ in rows] and labels.tolist() == [label for _, label in rows]
    sample, sample_labels = kp.data.read_labelled_tsv(path, max_rows=5, seed=3)
    order = np.random.default_rng(3).permutation(20)[:5]
    assert sample == [rows[i][0] for i in order] and sample_labels.tolist() == [rows[i][1] for i in order]


def test_read_labelled_tsv_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        kp.data.read_labelled_tsv(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\t0\nno label here\n")
    with pytest.raises(ValueError, match="bad.tsv:2"):
        kp.data.read_labelled_tsv(bad)
    with pytest.raises(ValueError, match="max_rows"):
        kp.data.read_labelled_tsv(tmp_path / "bad.tsv", max_rows=0)


def test_reads_the_shared_sst2_dev_set():
    if not os.path.isdir(SHARED):
        pytest.skip("the shared data folder is absent")
    texts, labels = kp.data.read_labelled_tsv(os.path.join(SHARED, "sst2", "dev.tsv.gz"))
    assert len(texts) == 872 and set(labels.tolist()) == {0, 1}  # counts from the data's README
