"""What export() may delete and where it writes; what Predictor trusts (issue 19, items 2, 3, 9, 11)."""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from keras_ptft.export import Predictor, export


def quick_export(classifier, path, **options):
    """The cheapest real export: one float TFLite artifact, no .keras copy."""
    return export(classifier, path, formats=["tflite"], save_keras=False, **options)


# === Item 2: overwrite=True replaces only an earlier export ===


def test_overwrite_refuses_a_folder_that_is_not_an_export(classifier, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mydata.txt").write_text("a year of labelling")
    (folder / "notes").mkdir()
    with pytest.raises(FileExistsError) as caught:
        quick_export(classifier, folder, overwrite=True)
    message = str(caught.value)
    assert str(folder) in message and "'mydata.txt'" in message and "'notes'" in message
    assert (folder / "mydata.txt").read_text() == "a year of labelling"  # nothing deleted
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # and no staging folder left behind


def test_overwrite_replaces_an_earlier_export(classifier, tmp_path):
    path = quick_export(classifier, tmp_path / "out")
    first = json.load(open(os.path.join(path, "manifest.json")))["created"]
    (tmp_path / "out" / "stray.txt").write_text("left by an older export")  # still ours: it has our manifest
    quick_export(classifier, path, overwrite=True)
    assert not os.path.exists(os.path.join(path, "stray.txt"))
    assert json.load(open(os.path.join(path, "manifest.json")))["created"] >= first
    assert sorted(os.listdir(tmp_path)) == ["out"]


# === Item 3: every file a Predictor reads is under a digest ===


@pytest.fixture
def copy(exported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def test_a_swapped_and_truncated_vocabulary_is_refused(copy):
    vocabulary = (copy / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    vocabulary[10], vocabulary[11] = vocabulary[11], vocabulary[10]
    (copy / "vocabulary.txt").write_text("\n".join(vocabulary[:-5]) + "\n", encoding="utf-8")
    for format in ["tflite", "saved_model"]:  # the token-id path reads it; every path checks it
        with pytest.raises(ValueError, match="vocabulary.txt"):
            Predictor(copy, format=format)


def test_a_vocabulary_with_two_tokens_swapped_is_refused(copy):
    data = (copy / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    data[20], data[21] = data[21], data[20]  # same size, different ids
    (copy / "vocabulary.txt").write_text("\n".join(data) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'vocabulary.txt' is changed"):
        Predictor(copy, format="tflite")


def test_edited_label_names_in_the_manifest_are_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["label_names"] = ["positive", "negative"]
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with pytest.raises(ValueError, match="manifest.json.*changed after export"):
        Predictor(copy)


def test_a_manifest_without_its_digest_is_refused(copy):
    os.remove(copy / "manifest.sha256")
    with pytest.raises(ValueError, match="manifest.sha256"):
        Predictor(copy)


def test_a_missing_vocabulary_is_named(copy):
    os.remove(copy / "vocabulary.txt")
    with pytest.raises(FileNotFoundError, match="vocabulary.txt"):
        Predictor(copy, format="tflite")


# === Item 9: errors name the path given; stale staging folders are cleaned ===


def test_unwritable_parent_reports_the_path_given(classifier, tmp_path, monkeypatch):
    target = tmp_path / "locked" / "out"

    def refuse(path, *args, **kwargs):  # what the OS says in a folder we may not write to
        raise PermissionError(13, "Permission denied", os.fspath(path))

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(PermissionError) as caught:
        quick_export(classifier, target)
    assert str(target) in str(caught.value) and ".export-" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere; the monkeypatched test covers the message")
def test_read_only_parent_reports_the_path_given(classifier, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as caught:
            quick_export(classifier, locked / "out")
    finally:
        locked.chmod(0o700)
    assert str(locked / "out") in str(caught.value) and ".export-" not in str(caught.value)


def test_a_target_under_a_regular_file_names_the_file(classifier, tmp_path):
    (tmp_path / "report.txt").write_text("not a folder")
    with pytest.raises(NotADirectoryError) as caught:
        quick_export(classifier, tmp_path / "report.txt" / "exports" / "out")
    message = str(caught.value)
    assert "report.txt" in message and "is a file" in message and ".export-" not in message
    with pytest.raises(FileExistsError, match="is a file"):
        quick_export(classifier, tmp_path / "report.txt")


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_staging_folders_of_killed_exports_are_cleaned(classifier, tmp_path):
    import socket

    def staging(name, marker):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "vocabulary.txt").write_text("[PAD]\n")
        if marker is not None:
            (folder / ".keras_ptft_staging.json").write_text(json.dumps(marker))
        return folder

    host = socket.gethostname()
    dead = staging(".export-out-dead", {"pid": _dead_pid(), "host": host, "started": 0})
    live = staging(".export-out-live", {"pid": os.getpid(), "host": host, "started": 0})  # an export running now
    foreign = staging(".export-someone-elses", None)  # not ours: no marker
    quick_export(classifier, tmp_path / "out")
    assert not dead.exists()
    assert live.exists() and foreign.exists()
    assert sorted(os.listdir(tmp_path)) == [".export-out-live", ".export-someone-elses", "out"]


def test_a_killed_export_leaves_only_a_staging_folder_the_next_export_removes(classifier, tmp_path):
    script = (
        "import os, sys\n"
        "import keras_ptft.export.kinds.text_classifier as kind\n"
        "def killed(*args, **kwargs): os._exit(9)  # as a SIGKILL mid-export\n"
        "kind.tflite.token_model = killed\n"
        "import keras\n"
        "from keras_ptft.export import export\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "export(model, sys.argv[2], formats=['tflite'], save_keras=False)\n"
    )
    model_file = tmp_path / "model.keras"
    classifier.save(model_file)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", script, str(model_file), str(tmp_path / "out")],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 9, result.stderr[-2000:]
    left = [name for name in os.listdir(tmp_path) if name.startswith(".export-")]
    assert len(left) == 1  # the killed export's staging folder
    quick_export(classifier, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["model.keras", "out"]


# === Item 11: folders and files follow the umask ===


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_export_follows_the_umask(classifier, tmp_path, umask, folder_mode, file_mode):
    previous = os.umask(umask)
    try:
        path = quick_export(classifier, tmp_path / "out")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == folder_mode
    for root, folders, files in os.walk(path):
        for name in folders:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == folder_mode, name
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == file_mode, name
