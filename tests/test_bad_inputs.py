"""The bad-input sweep of the data API and of every CLI command (issue 19), one row per input.

Each data row is `(id, call, exception type, fragment)`: the call must raise that type with the
fragment (the argument's name, the file, the line) in its message. Each CLI row is `(id, argv,
exit code, fragment)`: `keras_ptft.cli.main(argv)` must return that code and print one
`keras-ptft ...` line holding the fragment (the flag's name), and no traceback. Rows marked
"was:" failed before the fix they guard (silently wrong output, a raw backend error, a
traceback, or work done before a flag was checked).
"""

import gzip
import os
import subprocess
import sys

import pytest

import keras_ptft as kp
from keras_ptft import cli

GOOD_LINES = [f"the animal number {i} sat on the mat" for i in range(40)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small files and saved folders the rows refer to by name."""
    root = tmp_path_factory.mktemp("bad_inputs")
    paths = {"root": str(root)}

    def write(name, text=None, data=None):
        path = root / name
        if data is None:
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(data)
        paths[name.replace(".", "_")] = str(path)
        return path

    write("corpus.txt", "\n".join(GOOD_LINES) + "\n")
    write("short.txt", "one line\nanother\n")
    write("stray.tsv", "sentence\tlabel\n" + "".join(f"text {i}\t{label}\n"
                                                     for i, label in enumerate(["0", "1", "2", "10", "7x"])))
    write("empty_label.tsv", "sentence\tlabel\na\t1\nb\t\n")
    write("ragged.tsv", "text\tlabel\nx\t1\textra\n")
    write("header_only.tsv", "sentence\tlabel\n")
    write("empty.tsv", "")
    write("names.tsv", "sentence\tlabel\na\tpos\nb\tneg\n")
    write("empty_side.tsv", "source\ttarget\nred\t红\nblue\t \n")
    write("table.txt", "text\tlabel\nx\t1\n")
    good_gz = gzip.compress(("sentence\tlabel\n" + "a fine film\t1\n" * 3000).encode())
    write("cut.tsv.gz", data=good_gz[: len(good_gz) // 2])
    write("plain.tsv.gz", "sentence\tlabel\nx\t1\n")
    crc = bytearray(good_gz)
    crc[-8] ^= 0xFF
    write("crc.tsv.gz", data=bytes(crc))
    corpus_gz = gzip.compress(("\n".join(GOOD_LINES * 50)).encode())
    write("cut.txt.gz", data=corpus_gz[: len(corpus_gz) // 2])
    write("latin1.txt", data="café\n".encode("latin-1"))
    write("empty_vocab.txt", "")
    os.makedirs(root / "folder")
    paths["folder"] = str(root / "folder")

    # A tiny GPT (24 positions, below `generate`'s old default of 64) and a tiny BERT, saved.
    texts = ["the cat sat on the mat", "the dog lay on the rug"] * 10
    vocabulary, merges = kp.data.train_bpe(texts, vocabulary_size=270, verbose=False)
    gpt = kp.models.GPT(vocabulary_size=len(vocabulary), num_layers=1, num_heads=1, hidden_dim=8,
                        intermediate_dim=16, max_sequence_length=24)
    kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocabulary, merges), sequence_length=16).save_to_preset(
        str(root / "gpt"))
    bert = kp.models.Bert(vocabulary_size=12, num_layers=1, num_heads=1, hidden_dim=8, intermediate_dim=16,
                          max_sequence_length=16)
    kp.tasks.MaskedLM(bert, vocabulary=list(kp.data.SPECIAL_TOKENS) + list("abcdefg"),
                      sequence_length=16).save_to_preset(str(root / "bert"))
    paths.update(gpt=str(root / "gpt"), bert=str(root / "bert"))
    return paths


def _pipelines():
    # Imported when a row runs, so the sweep also collects on a tree without the module.
    import keras_ptft.pipelines as pipelines

    return pipelines


def _io():
    import keras_ptft.data.io as io

    return io


# (id, call taking the `files` dict, exception type, fragment of the message)
DATA_ROWS = [
    # read_labeled_texts — was: "7x" silently made 5 string-sorted classes (2 -> id 3, 10 -> id 2).
    ("table-stray-label", lambda f: kp.data.read_labeled_texts(f["stray_tsv"]), ValueError, "line 6: label '7x'"),
    ("table-empty-label", lambda f: kp.data.read_labeled_texts(f["empty_label_tsv"]), ValueError,
     "line 3: the label cell"),
    ("table-names-as-ids", lambda f: kp.data.read_labeled_texts(f["names_tsv"], labels="ids"), ValueError,
     "line 2: label 'pos' is not a class id"),
    ("table-unknown-name", lambda f: kp.data.read_labeled_texts(f["names_tsv"], label_names=["pos"]), ValueError,
     "label 'neg' is not among `label_names`"),
    ("table-labels-mode", lambda f: kp.data.read_labeled_texts(f["names_tsv"], labels="strings"), ValueError,
     "`labels`"),
    ("table-names-and-ids", lambda f: kp.data.read_labeled_texts(f["names_tsv"], label_names=["a"], labels="ids"),
     ValueError, "`label_names`"),
    ("table-label-names-str", lambda f: kp.data.read_labeled_texts(f["names_tsv"], label_names="pos"), ValueError,
     "`label_names`"),
    ("table-missing", lambda f: kp.data.read_labeled_texts(f["root"] + "/none.tsv"), FileNotFoundError, "`path`"),
    ("table-extension", lambda f: kp.data.read_labeled_texts(f["table_txt"]), ValueError, ".tsv, .csv"),
    ("table-text-column", lambda f: kp.data.read_labeled_texts(f["names_tsv"], text_column="body"), ValueError,
     "`text_column`='body'"),
    ("table-label-column", lambda f: kp.data.read_labeled_texts(f["names_tsv"], label_column="y"), ValueError,
     "`label_column`='y'"),
    ("table-ragged-row", lambda f: kp.data.read_labeled_texts(f["ragged_tsv"]), ValueError, "line 2 has 3 fields"),
    ("table-header-only", lambda f: kp.data.read_labeled_texts(f["header_only_tsv"]), ValueError, "no examples"),
    ("table-empty-file", lambda f: kp.data.read_labeled_texts(f["empty_tsv"]), ValueError, "is empty"),
    ("table-max-rows", lambda f: kp.data.read_labeled_texts(f["names_tsv"], max_rows=0), ValueError, "`max_rows`"),
    # Corrupt gzip — was: raw EOFError / BadGzipFile / zlib.error without the file's name.
    ("gz-truncated", lambda f: kp.data.read_labeled_texts(f["cut_tsv_gz"]), ValueError, "truncated gzip"),
    ("gz-not-gzip", lambda f: kp.data.read_labeled_texts(f["plain_tsv_gz"]), ValueError, "is not a gzip file"),
    ("gz-crc", lambda f: kp.data.read_labeled_texts(f["crc_tsv_gz"]), ValueError, "CRC"),
    ("gz-corpus-wordpiece", lambda f: kp.data.train_wordpiece(f["cut_txt_gz"], 30), ValueError,
     "cut.txt.gz' is a truncated gzip file"),
    ("gz-corpus-bpe", lambda f: kp.data.train_bpe([f["cut_txt_gz"]], 300, verbose=False), ValueError,
     "cut.txt.gz' is a truncated gzip file"),
    ("not-utf8-vocabulary", lambda f: kp.data.load_vocabulary(f["latin1_txt"]), ValueError, "is not UTF-8"),
    ("iter-lines-missing", lambda f: list(_io().iter_lines(f["root"] + "/none.txt", "corpus")), FileNotFoundError,
     "`corpus`"),
    # Paths that do not exist — was: a vocabulary learned from the characters of the path.
    ("wordpiece-missing-paths", lambda f: kp.data.train_wordpiece(["/nonexistent/file.txt"], 20),
     FileNotFoundError, "/nonexistent/file.txt"),
    ("wordpiece-some-missing", lambda f: kp.data.train_wordpiece([f["corpus_txt"], "data/b.txt"], 20),
     FileNotFoundError, "data/b.txt"),
    ("bpe-missing-paths", lambda f: kp.data.train_bpe(["/nonexistent/file.txt"], 300), FileNotFoundError,
     "/nonexistent/file.txt"),
    ("sentencepiece-missing-path", lambda f: kp.data.train_sentencepiece("corpus/train.txt", 50),
     FileNotFoundError, "corpus/train.txt"),
    ("wordpiece-vocabulary-size", lambda f: kp.data.train_wordpiece(["a b"], 3), ValueError, "`vocabulary_size`"),
    ("wordpiece-blank", lambda f: kp.data.train_wordpiece(["", "  "], 20), ValueError, "`texts_or_files`"),
    ("wordpiece-none", lambda f: kp.data.train_wordpiece(None, 20), ValueError, "`texts_or_files`"),
    ("wordpiece-reserved", lambda f: kp.data.train_wordpiece(["a"], 20, reserved_tokens="[PAD]"), ValueError,
     "`reserved_tokens`"),
    ("bpe-vocabulary-size", lambda f: kp.data.train_bpe(["a b"], 100), ValueError, "vocabulary_size"),
    ("bpe-empty", lambda f: kp.data.train_bpe([], 300), ValueError, "`texts_or_files`"),
    ("sentencepiece-model-type", lambda f: kp.data.train_sentencepiece(["a"], 50, model_type="word"), ValueError,
     "`model_type`"),
    ("vocabulary-missing", lambda f: kp.data.load_vocabulary(f["root"] + "/vocab.txt"), FileNotFoundError, "`path`"),
    ("vocabulary-empty", lambda f: kp.data.load_vocabulary(f["empty_vocab_txt"]), ValueError, "`path`"),
    ("vocabulary-line-break", lambda f: kp.data.save_vocabulary(["a\nb"], f["root"] + "/v.txt"), ValueError,
     "`vocabulary`"),
    ("corpus-max-documents", lambda f: kp.data.load_embedded_corpus(max_documents=0), ValueError,
     "`max_documents`"),
    ("task-test-fraction", lambda f: kp.data.load_embedded_classification(test_fraction=1.5), ValueError,
     "`test_fraction`"),
    # Pipelines: every argument checked before the tokenizer trains.
    ("pipeline-size", lambda f: _pipelines().pretrain_gpt(GOOD_LINES, size="huge"), ValueError, "`size`"),
    ("pipeline-epochs", lambda f: _pipelines().pretrain_bert(GOOD_LINES, epochs=-1), ValueError, "`epochs`"),
    ("pipeline-batch-size", lambda f: _pipelines().pretrain_vit(None, batch_size=0), ValueError, "`batch_size`"),
    ("pipeline-learning-rate", lambda f: _pipelines().pretrain_bert(GOOD_LINES, learning_rate=float("nan")),
     ValueError, "`learning_rate`"),
    ("pipeline-gpt-vocabulary", lambda f: _pipelines().pretrain_gpt(GOOD_LINES, vocabulary_size=100), ValueError,
     "`vocabulary_size`"),
    ("pipeline-sequence-length", lambda f: _pipelines().pretrain_bert(GOOD_LINES, sequence_length=1), ValueError,
     "`sequence_length`"),
    ("pipeline-few-texts", lambda f: _pipelines().pretrain_bert(["a", "b"]), ValueError, "`texts`"),
    ("pipeline-held-out", lambda f: _pipelines().pretrain_gpt(GOOD_LINES, held_out_fraction=1.0), ValueError,
     "`held_out_fraction`"),
]


@pytest.mark.parametrize("call, error, fragment", [row[1:] for row in DATA_ROWS], ids=[row[0] for row in DATA_ROWS])
def test_data_api_refuses(files, call, error, fragment):
    with pytest.raises(error) as raised:
        call(files)
    assert fragment in str(raised.value)


def test_shared_data_dir_names_its_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_PTFT_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="KERAS_PTFT_SHARED_DATA"):
        kp.data.shared_data_dir()


# (id, argv with {name} placeholders from `files`, exit code, fragment of the one error line).
# Exit code 2: refused while parsing the command line; 1: refused by the command, before its work.
CLI_ROWS = [
    # pretrain — was: --epochs -1 trained with total_steps=-23; --size huge failed after the tokenizer.
    ("pretrain-epochs", ["pretrain", "gpt", "--corpus", "{corpus_txt}", "--epochs", "-1"], 2, "--epochs"),
    ("pretrain-size", ["pretrain", "gpt", "--corpus", "{corpus_txt}", "--size", "huge"], 1, "--size"),
    ("pretrain-bert-size", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--size", "124M"], 1, "--size"),
    ("pretrain-batch-size", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--batch-size", "-3"], 2,
     "--batch-size"),
    ("pretrain-learning-rate", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--learning-rate", "nan"], 2,
     "--learning-rate"),
    ("pretrain-sequence-length", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--sequence-length", "0"], 2,
     "--sequence-length"),
    ("pretrain-vocabulary-size", ["pretrain", "gpt", "--corpus", "{corpus_txt}", "--vocabulary-size", "100"], 1,
     "--vocabulary-size"),
    ("pretrain-missing-corpus", ["pretrain", "gpt", "--corpus", "{root}/none.txt"], 2, "--corpus"),
    ("pretrain-short-corpus", ["pretrain", "bert", "--corpus", "{short_txt}"], 1, "--corpus"),
    ("pretrain-corrupt-corpus", ["pretrain", "gpt", "--corpus", "{cut_txt_gz}"], 1, "truncated gzip"),
    ("pretrain-model", ["pretrain", "t5", "--corpus", "{corpus_txt}"], 2, "model"),
    ("pretrain-distribution", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--distribution", "pipeline"], 2,
     "--distribution"),
    ("pretrain-devices-alone", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--devices", "2"], 1,
     "--devices needs --distribution"),
    ("pretrain-devices-zero", ["pretrain", "bert", "--corpus", "{corpus_txt}", "--distribution", "data",
                               "--devices", "0"], 2, "--devices"),
    # This suite runs TensorFlow: model parallelism is JAX's.
    ("finetune-devices-alone", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}", "--devices", "2"], 1,
     "--devices needs --distribution"),
    ("pretrain-model-parallel-tf", ["pretrain", "gpt", "--corpus", "{corpus_txt}", "--distribution", "model"], 1,
     "needs the JAX backend"),
    ("pretrain-seed", ["pretrain", "gpt", "--corpus", "{corpus_txt}", "--seed", "x"], 2, "--seed"),
    # finetune — was: the stray label made named classes and exit 0; missing files a traceback.
    ("finetune-stray-label", ["finetune", "--backbone", "{folder}", "--train", "{stray_tsv}",
                              "--output-dir", "{root}/out"], 1, "line 6: label '7x'"),
    ("finetune-corrupt-table", ["finetune", "--backbone", "{folder}", "--train", "{cut_tsv_gz}"], 1,
     "truncated gzip"),
    ("finetune-missing-backbone", ["finetune", "--backbone", "{root}/none", "--train", "{names_tsv}"], 2,
     "--backbone"),
    ("finetune-missing-train", ["finetune", "--backbone", "{folder}", "--train", "{root}/none.tsv"], 2, "--train"),
    ("finetune-missing-validation", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}",
                                     "--validation", "{root}/none.tsv"], 2, "--validation"),
    ("finetune-epochs", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}", "--epochs", "0"], 2,
     "--epochs"),
    ("finetune-labels", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}", "--labels", "x"], 2,
     "--labels"),
    ("finetune-lora-rank", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}", "--lora-rank", "-1"],
     2, "--lora-rank"),
    ("finetune-not-a-backbone", ["finetune", "--backbone", "{folder}", "--train", "{names_tsv}",
                                 "--output-dir", "{root}/out2"], 1, "{folder}"),
    # pretrain seq2seq, finetune translator, translate (issue 18)
    ("pretrain-seq2seq-vocabulary-size", ["pretrain", "seq2seq", "--corpus", "{corpus_txt}", "--vocabulary-size",
                                          "200"], 1, "--vocabulary-size"),
    ("pretrain-seq2seq-size", ["pretrain", "seq2seq", "--corpus", "{corpus_txt}", "--size", "124M"], 1, "--size"),
    ("finetune-no-backbone", ["finetune", "--train", "{names_tsv}"], 2, "--backbone"),
    ("finetune-translator-no-train", ["finetune", "translator", "--output-dir", "{root}/t"], 2, "--train"),
    ("finetune-translator-missing-train", ["finetune", "translator", "--train", "{root}/none.tsv", "--output-dir",
                                           "{root}/t"], 2, "--train"),
    ("finetune-translator-empty-side", ["finetune", "translator", "--train", "{empty_side_tsv}", "--output-dir",
                                        "{root}/t"], 1, "line 3: the 'target' cell is empty"),
    ("finetune-translator-ragged-row", ["finetune", "translator", "--train", "{ragged_tsv}", "--output-dir",
                                        "{root}/t"], 1, "line 2 has 3 cells but the header has 2"),
    ("finetune-translator-column", ["finetune", "translator", "--train", "{empty_side_tsv}", "--source-column",
                                    "english", "--output-dir", "{root}/t"], 1, "--source-column='english'"),
    ("finetune-translator-size", ["finetune", "translator", "--train", "{names_tsv}", "--size", "huge",
                                  "--output-dir", "{root}/t"], 1, "--size"),
    ("finetune-translator-minutes", ["finetune", "translator", "--train", "{names_tsv}", "--max-minutes", "0",
                                     "--output-dir", "{root}/t"], 2, "--max-minutes"),
    ("finetune-translator-devices-alone", ["finetune", "translator", "--train", "{names_tsv}", "--devices", "2",
                                           "--output-dir", "{root}/t"], 1, "--devices needs --distribution"),
    ("finetune-translator-model-parallel", ["finetune", "translator", "--train", "{names_tsv}", "--distribution",
                                            "model", "--output-dir", "{root}/t"], 1, "distribution='data_parallel'"),
    ("translate-no-input", ["translate", "{folder}"], 2, "--text"),
    ("translate-both-inputs", ["translate", "{folder}", "--text", "a", "--input", "{corpus_txt}"], 2, "--input"),
    ("translate-missing-input", ["translate", "{folder}", "--input", "{root}/none.txt"], 2, "--input"),
    ("translate-latin1-input", ["translate", "{folder}", "--input", "{latin1_txt}"], 1, "not UTF-8"),
    ("translate-num-beams", ["translate", "{folder}", "--text", "a", "--num-beams", "0"], 2, "--num-beams"),
    ("translate-max-length", ["translate", "{folder}", "--text", "a", "--max-length", "1"], 2, "--max-length"),
    ("translate-sampler", ["translate", "{folder}", "--text", "a", "--sampler", "top_k"], 2, "--sampler"),
    ("translate-not-a-translator", ["translate", "{folder}", "--text", "a"], 1, "holds no model.keras"),
    # generate — was: a 24-position GPT failed naming `sequence_length`; a BERT failed on lengths.
    ("generate-bert-folder", ["generate", "{bert}", "--prompt", "the"], 1, "not a causal LM"),
    ("generate-too-long", ["generate", "{gpt}", "--prompt", "the", "--max-length", "100"], 1, "--max-length"),
    ("generate-max-length", ["generate", "{gpt}", "--prompt", "the", "--max-length", "0"], 2, "--max-length"),
    ("generate-missing", ["generate", "{root}/none", "--prompt", "the"], 2, "argument path"),
    ("generate-top-p", ["generate", "{gpt}", "--prompt", "a", "--sampler", "top_p", "--top-p", "1.5"], 2,
     "--top-p"),
    ("generate-sampler", ["generate", "{gpt}", "--prompt", "a", "--sampler", "best"], 2, "--sampler"),
    ("generate-temperature", ["generate", "{gpt}", "--prompt", "a", "--temperature", "-1"], 2, "--temperature"),
    ("generate-no-prompt", ["generate", "{gpt}"], 2, "--prompt"),
    # serve, export, predict, quickstart
    ("serve-port", ["serve", "{folder}", "--port", "99999"], 2, "--port"),
    ("serve-batch-size", ["serve", "{folder}", "--max-batch-size", "0"], 2, "--max-batch-size"),
    ("serve-request-bytes", ["serve", "{folder}", "--max-request-bytes", "-5"], 2, "--max-request-bytes"),
    ("serve-wait", ["serve", "{folder}", "--max-wait-ms", "-1"], 2, "--max-wait-ms"),
    ("serve-read-timeout", ["serve", "{folder}", "--read-timeout", "0"], 2, "--read-timeout"),
    ("serve-not-an-export", ["serve", "{folder}"], 1, "{folder}"),
    ("export-missing-model", ["export", "{root}/none.keras", "{root}/exported"], 2, "no model file"),
    ("export-agreement", ["export", "{root}/m.keras", "{root}/e", "--min-label-agreement", "2"], 2,
     "--min-label-agreement"),
    ("export-quantization", ["export", "{root}/m.keras", "{root}/e", "--quantization", "int4"], 2,
     "--quantization"),
    ("export-top-k", ["export", "{root}/m.keras", "{root}/e", "--top-k", "0"], 2, "--top-k"),
    ("predict-no-input", ["predict", "{folder}"], 2, "--text"),
    ("predict-not-an-export", ["predict", "{folder}", "--text", "x"], 1, "{folder}"),
    ("quickstart-model", ["quickstart", "--model", "t5"], 2, "--model"),
    ("quickstart-seed", ["quickstart", "--seed", "-1"], 2, "--seed"),
    ("quickstart-size", ["quickstart", "--model", "vit", "--size", "huge"], 1, "--size"),
    ("no-command", [], 2, "command"),
    ("unknown-command", ["train"], 2, "invalid choice"),
]


@pytest.mark.parametrize("argv, code, fragment", [row[1:] for row in CLI_ROWS], ids=[row[0] for row in CLI_ROWS])
def test_cli_refuses_with_one_line(files, capsys, argv, code, fragment):
    assert cli.main([arg.format(**files) for arg in argv]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("keras-ptft")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert fragment.format(**files) in lines[0], lines[0]


def test_cli_prints_the_traceback_only_with_verbose(files, capsys):
    argv = ["pretrain", "gpt", "--corpus", files["corpus_txt"], "--size", "huge"]
    assert cli.main(argv + ["--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "check_pretrain_arguments" in err and err.strip().endswith("received 'huge'.")
    assert cli.main(argv + ["--debug"]) == 1 and "Traceback" in capsys.readouterr().err


def test_the_command_hides_tensorflow_start_up_lines(files):
    # Was: ~6 absl/oneDNN INFO lines on every command, whatever TF_CPP_MIN_LOG_LEVEL said.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "keras_ptft.cli", "pretrain", "gpt", "--corpus",
                             files["corpus_txt"], "--size", "huge"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "keras-ptft pretrain: --size must be a GPT size, one of ['tiny', 'mini', 'small', 'medium', 'base']; received 'huge'."
    ], result.stderr
