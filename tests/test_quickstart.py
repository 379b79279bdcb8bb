"""The main job end to end, in its --fast form, through the CLI's own entry point.

It runs in the test process: a fresh interpreter would only add its ~10 s of imports, and the
shell path itself is covered by `tests/test_bad_inputs.py` (`python -m keras_ptft.cli`) and by
the README's first command on a fresh clone. The exported SavedModel is still loaded in a process
of its own, with plain TensorFlow.
"""

import json
import os
import subprocess
import sys

import pytest

from keras_ptft import cli


@pytest.mark.slow
def test_quickstart_fast_runs_every_phase_and_exports_a_working_savedmodel(tmp_path, capsys):
    code = cli.main(["quickstart", "--fast", "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:] + captured.err[-3000:]
    out = captured.out
    for phase in range(1, 7):
        assert f"=== {phase}/6" in out
    assert "keras-ptft quickstart summary" in out
    # The exported SavedModel answers raw strings with plain TensorFlow (+ tensorflow-text ops).
    # The export is `kp.export.export`'s folder: its manifest records the SavedModel's digests and
    # the parity it verified on the task's test texts before the folder was moved into place.
    manifest = json.loads((tmp_path / "quickstart" / "manifest.json").read_text())
    assert manifest["kind"] == "text_classifier" and len(manifest["label_names"]) == 4
    saved_model = manifest["artifacts"]["saved_model"]
    assert saved_model["files"] and saved_model["parity"]["max_abs_diff"] <= 1e-4
    assert saved_model["parity"]["examples"] > 100  # the test texts, not the built-in probe set
    assert (tmp_path / "quickstart" / "vocabulary.txt").exists()
    check = (
        "import tensorflow as tf, tensorflow_text\n"
        f"serve = tf.saved_model.load({str(tmp_path / 'quickstart' / '1')!r}).signatures['serving_default']\n"
        "out = serve(texts=tf.constant(['Return the square root of x.', 'Open a socket connection.']))\n"
        "print(out['probabilities'].shape, out['label_names'].numpy().tolist())\n"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "(2, 4)" in loaded.stdout
    assert (tmp_path / "quickstart_bert" / "model.weights.h5").exists()
    assert (tmp_path / "quickstart" / "model.keras").exists()
