import os

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
