"""Bad input to the tasks and recipes: one row per case — the call, the exception it must raise
and a fragment of the message naming the argument (issue 19's sweep, Python API layer).

Every row fails before any training step, so the whole table runs in seconds on tiny models.
"""

import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft import validation
from tests import harness

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "film", "cat", "mat"]
TEXTS = ["a good film", "a bad film"] * 32  # 64 examples
LABELS = [1, 0] * 32
BPE_TEXTS = ["the cat sat on the mat", "the dog lay on the rug"] * 8


def bert(max_sequence_length=32):
    return harness.tiny_bert(VOCAB, hidden_dim=8, intermediate_dim=16, max_sequence_length=max_sequence_length)


def vit(channels=3):
    return harness.tiny_vit(image_shape=(8, 8, channels), pooling="mean")


NER_LABELS = ["O", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny models shared by the rows (each row fails before anything is trained)."""
    conll = tmp_path_factory.mktemp("conll") / "bad.txt"
    conll.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-PER\nrejects VBZ O\n", encoding="utf-8")
    vocab, merges = kp.data.train_bpe(BPE_TEXTS, vocabulary_size=270, verbose=False)
    gpt = kp.models.GPT(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                        max_sequence_length=24)
    rng = np.random.default_rng(0)
    return {
        "classifier": kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, verbose=False),
        "regressor": kp.recipes.text_regressor(bert(), vocabulary=VOCAB, verbose=False),
        "mlm": kp.tasks.MaskedLM(bert(), vocabulary=VOCAB),
        "gpt": gpt,
        "tokenizer": kp.data.bpe_tokenizer(vocab, merges),
        "lm": kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocab, merges)),
        "image_classifier": kp.recipes.image_classifier(vit(), 2),
        "segmenter": kp.recipes.image_segmenter(vit(), 3),
        "embedder": kp.recipes.sentence_embedder(bert(), preprocessor=kp.data.BertPreprocessor(VOCAB, sequence_length=8)),
        "tagger": kp.recipes.token_classifier(bert(), NER_LABELS, vocabulary=VOCAB, sequence_length=16),
        "strict_tagger": kp.recipes.token_classifier(bert(), NER_LABELS, vocabulary=VOCAB, sequence_length=16,
                                                     strict_scheme=True),
        "qa": kp.recipes.question_answerer(bert(), vocabulary=VOCAB, sequence_length=16, doc_stride=4),
        "conll": conll,
        "images": rng.integers(0, 256, (8, 8, 8, 3)).astype("uint8"),
        "labels": np.array([0, 1] * 4),
    }


ROWS = [
    # --- sequence_length against the backbone (issue 19 item 4, issue 13 item 4) ---
    ("mlm sequence_length > backbone", lambda e: kp.tasks.MaskedLM(bert(32), vocabulary=VOCAB, sequence_length=64),
     ValueError, "`sequence_length`=64 is longer than the backbone's max_sequence_length=32"),
    ("mlm sequence_length too short", lambda e: kp.tasks.MaskedLM(bert(), vocabulary=VOCAB, sequence_length=2),
     ValueError, "`sequence_length` must be at least 3"),
    ("mlm sequence_length not an int", lambda e: kp.tasks.MaskedLM(bert(), vocabulary=VOCAB, sequence_length="16"),
     ValueError, "`sequence_length` must be an integer"),
    ("causal lm sequence_length > backbone",
     lambda e: kp.tasks.CausalLM(e["gpt"], e["tokenizer"], sequence_length=100),
     ValueError, "`sequence_length`=100 is longer than the backbone's max_sequence_length=24"),
    ("text_classifier sequence_length > backbone",
     lambda e: kp.recipes.text_classifier(bert(16), 2, vocabulary=VOCAB, sequence_length=64, verbose=False),
     ValueError, "max_sequence_length=16"),
    ("text_classifier preprocessor longer than backbone",
     lambda e: kp.recipes.text_classifier(bert(16), 2, preprocessor=kp.data.BertPreprocessor(VOCAB, sequence_length=64),
                                          verbose=False),
     ValueError, "`preprocessor.sequence_length`=64"),
    ("text_generator sequence_length > backbone",
     lambda e: kp.recipes.text_generator(e["gpt"], e["tokenizer"], sequence_length=25),
     ValueError, "`sequence_length`=25"),
    # --- lengths and emptiness (issue 19 item 5) ---
    ("fit x and y of different lengths", lambda e: e["classifier"].fit(TEXTS, LABELS[:10], verbose=0),
     ValueError, "`x` has 64, `y` has 10"),
    ("fit empty", lambda e: e["classifier"].fit([], [], verbose=0), ValueError, "`x` is empty"),
    ("evaluate empty", lambda e: e["classifier"].evaluate([], [], verbose=0), ValueError, "`x` is empty"),
    ("fit sample_weight of another length",
     lambda e: e["classifier"].fit(TEXTS, LABELS, sample_weight=[1.0], verbose=0),
     ValueError, "`sample_weight` has 1"),
    ("fit without x", lambda e: e["classifier"].fit(None, LABELS, verbose=0), ValueError, "`x` is required"),
    ("regressor lengths", lambda e: e["regressor"].fit(TEXTS, [0.5] * 3, verbose=0), ValueError, "`y` has 3"),
    ("regressor non-finite", lambda e: e["regressor"].fit(TEXTS[:2], [0.5, np.nan], verbose=0),
     ValueError, "`y` must hold finite numbers"),
    ("mlm fit empty", lambda e: e["mlm"].fit([], verbose=0), ValueError, "`x` is empty"),
    ("causal lm fit empty", lambda e: e["lm"].fit([], verbose=0), ValueError, "`x` is empty"),
    ("generate no prompt", lambda e: e["lm"].generate([]), ValueError, "`inputs` must hold at least one text"),
    ("image labels of another length", lambda e: e["image_classifier"].fit(e["images"], e["labels"][:3], verbose=0),
     ValueError, "`x` has 8, `y` has 3"),
    ("image fit empty", lambda e: e["image_classifier"].fit(e["images"][:0], e["labels"][:0], verbose=0),
     ValueError, "`x` is empty"),
    # --- labels and classes ---
    ("label out of range", lambda e: e["classifier"].fit(TEXTS[:2], [0, 2], verbose=0),
     ValueError, "`y` must hold labels in [0, num_classes=2)"),
    ("negative label", lambda e: e["classifier"].fit(TEXTS[:2], [-1, 0], verbose=0), ValueError, "num_classes=2"),
    ("fractional label", lambda e: e["classifier"].fit(TEXTS[:2], [0.5, 1.0], verbose=0),
     ValueError, "`y` must hold integer class labels"),
    ("num_classes 1", lambda e: kp.recipes.text_classifier(bert(), 1, vocabulary=VOCAB), ValueError, "`num_classes`"),
    ("num_classes float", lambda e: kp.recipes.text_classifier(bert(), 2.5, vocabulary=VOCAB),
     ValueError, "num_classes=2.5"),
    ("num_classes bool", lambda e: kp.tasks.TextClassifier(bert(), True), ValueError, "num_classes=True"),
    ("image num_classes", lambda e: kp.recipes.image_classifier(vit(), 0), ValueError, "num_classes=0"),
    ("segmenter num_classes", lambda e: kp.recipes.image_segmenter(vit(), 1), ValueError, "num_classes=1"),
    ("image label out of range", lambda e: e["image_classifier"].fit(e["images"], e["labels"] + 5, verbose=0),
     ValueError, "labels in [0, num_classes=2)"),
    ("label_names count", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, label_names=["a"]),
     ValueError, "`label_names`"),
    # --- texts ---
    ("non-string texts", lambda e: e["classifier"].fit([1, 2], [0, 1], verbose=0),
     ValueError, "`x` must hold only strings"),
    ("texts of another type", lambda e: e["classifier"].predict(3), TypeError, "`x` must be a string or a list"),
    ("2-D text array", lambda e: e["classifier"].predict(np.array([["a", "b"]])), ValueError, "1-D"),
    ("fill_mask non-strings", lambda e: e["mlm"].fill_mask([3, 4]), ValueError, "`texts` must hold only strings"),
    ("pairs of different lengths", lambda e: e["embedder"].fit((["a", "b"], ["a"]), batch_size=2),
     ValueError, "`x[0]` has 2, `x[1]` has 1"),
    ("pairs not a tuple", lambda e: e["embedder"].fit(["a", "b"], batch_size=2), ValueError, "`x` must be a tuple"),
    ("in-batch negatives need 2", lambda e: e["embedder"].fit((["a", "b"], ["a", "b"]), batch_size=1),
     ValueError, "`batch_size` must be in [2, 2]"),
    # --- images ---
    ("float images", lambda e: e["image_classifier"].fit(e["images"].astype("float32"), e["labels"], verbose=0),
     ValueError, "`x` must be uint8 images"),
    ("wrong image size", lambda e: e["image_classifier"].predict(np.zeros((2, 16, 16, 3), "uint8")),
     ValueError, "`x` must have shape (batch, 8, 8, 3)"),
    ("wrong channels", lambda e: e["image_classifier"].predict(e["images"][..., :1]), ValueError, "channel"),
    ("segmenter masks shape", lambda e: e["segmenter"].fit(e["images"], np.zeros((8, 4, 4), "int32"), verbose=0),
     ValueError, "`y` masks must have shape (8, 8, 8)"),
    ("mim float images", lambda e: kp.tasks.MaskedImageModeling(vit(), decoder_dim=8, decoder_layers=1,
                                                               decoder_heads=2).fit(np.zeros((2, 8, 8, 3)), verbose=0),
     ValueError, "`x` must be uint8 images"),
    # --- optimizer, schedule, loss and other options ---
    ("unknown optimizer", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, optimizer="adamz"),
     ValueError, "Unknown optimizer 'adamz'"),
    ("unknown schedule", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, schedule="zigzag"),
     ValueError, "Unknown schedule 'zigzag'"),
    ("unknown loss", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, loss="l7"),
     ValueError, "Unknown loss 'l7'"),
    ("unknown pooling", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, pooling="max"),
     ValueError, "`pooling`"),
    ("bad seed", lambda e: kp.recipes.text_classifier(bert(), 2, vocabulary=VOCAB, seed="0", verbose=False),
     ValueError, "`seed` must be an integer"),
    ("mask_rate out of range", lambda e: kp.tasks.MaskedLM(bert(), vocabulary=VOCAB, mask_rate=1.5),
     ValueError, "`mask_rate`"),
    ("mask_rate out of range (images)", lambda e: kp.tasks.MaskedImageModeling(vit(), mask_rate=0.0), ValueError,
     "`mask_rate` must be in (0, 1)"),
    ("validation_split too large", lambda e: e["classifier"].fit(TEXTS[:2], LABELS[:2], validation_split=0.99,
                                                                 verbose=0),
     ValueError, "`validation_split`=0.99"),
    ("validation_split and validation_data",
     lambda e: e["classifier"].fit(TEXTS, LABELS, validation_split=0.5, validation_data=(TEXTS, LABELS), verbose=0),
     ValueError, "either `validation_split` or `validation_data`"),
    ("bad validation_data", lambda e: e["classifier"].fit(TEXTS, LABELS, validation_data=3, verbose=0),
     ValueError, "`validation_data`"),
    ("backbone of the wrong type", lambda e: kp.recipes.text_classifier(42, 2), ValueError, "`backbone_or_path`"),
    ("image recipe on a text backbone", lambda e: kp.recipes.image_classifier(bert(), 2), ValueError,
     "`backbone_or_path` must be an image backbone"),
    ("text_generator learning rate", lambda e: kp.recipes.text_generator(e["gpt"], e["tokenizer"], learning_rate=0),
     ValueError, "`learning_rate`"),
    ("vocabulary / backbone mismatch", lambda e: kp.tasks.MaskedLM(bert(), vocabulary=VOCAB[:-1]), ValueError,
     "vocabulary_size"),
    # --- NER and QA (issue 15's bad-input list) ---
    ("conll line with a missing column", lambda e: kp.data.read_conll(e["conll"]), ValueError,
     "line 4: expected 4 columns"),
    ("ner tag not in label_names", lambda e: e["tagger"].fit([["a", "film"], ["the", "cat"]],
                                                             [["O", "O"], ["B-ORG", "O"]], verbose=0),
     ValueError, "`tags[1][0]`='B-ORG' is not in `label_names`"),
    ("ner label_names not a tag set", lambda e: kp.recipes.token_classifier(bert(), ["O", "PER"], vocabulary=VOCAB),
     ValueError, "`label_names` must hold IOB2 tags"),
    ("ner I- after O, strict scheme", lambda e: e["strict_tagger"].fit([["a", "film"]], [["O", "I-PER"]], verbose=0),
     ValueError, "`tags[0][1]`='I-PER' after 'O' breaks the IOB2 scheme"),
    ("ner a sentence string as words", lambda e: e["tagger"].fit(["a film"], [["O", "O"]], verbose=0), ValueError,
     "`words[0]` must be a list of words"),
    ("qa empty context", lambda e: e["qa"].fit([("a film?", "the cat"), ("a film?", " ")], [None, None], verbose=0),
     ValueError, "The context of example 1 must be a non-empty str"),
    ("qa question longer than the window",
     lambda e: e["qa"].predict([("a film", "the cat"), (" ".join(["film"] * 14), "the cat")]), ValueError,
     "The question of example 1 has 14 pieces, too many for sequence_length=16"),
    ("qa doc_stride >= the window", lambda e: kp.recipes.question_answerer(bert(), vocabulary=VOCAB,
                                                                          sequence_length=16, doc_stride=12),
     ValueError, "`doc_stride`=12 must be smaller"),
    ("qa doc_stride >= one example's window",
     lambda e: e["qa"].predict([("a film", "the cat"), (" ".join(["film"] * 9), "the cat")]), ValueError,
     "`doc_stride`=4 must be smaller than the 4 context pieces a window of example 1 holds"),
    ("qa answer not at its start", lambda e: e["qa"].fit([("a film?", "the cat")], [{"text": "cat", "start": 0}],
                                                         verbose=0),
     ValueError, "`y[0]`: the answer 'cat' is not at character 0 of context 0"),
]


@pytest.mark.parametrize("call, error, fragment", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_refused_naming_the_argument(env, call, error, fragment):
    with pytest.raises(error) as caught:
        call(env)
    assert fragment in str(caught.value), str(caught.value)


def test_empty_predict_returns_an_empty_array(env):
    assert env["classifier"].predict([]).shape == (0, 2)
    assert env["regressor"].predict([]).shape == (0, 1)
    assert env["image_classifier"].predict(env["images"][:0]).shape == (0, 2)
    assert env["embedder"].encode([]).shape == (0, 8)


def test_default_sequence_length_fits_the_backbone(toy_corpus, toy_vocabulary):
    # The default (128) would not fit a 32-position BERT: it is capped at the backbone's maximum.
    backbone = kp.models.Bert(vocabulary_size=len(toy_vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
                              intermediate_dim=16, max_sequence_length=32)
    mlm = kp.tasks.MaskedLM(backbone, vocabulary=toy_vocabulary)
    assert mlm.sequence_length == 32
    history = mlm.fit(toy_corpus[:16], batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert validation.check_sequence_length(None, backbone, default=16) == 16
    classifier = kp.recipes.text_classifier(backbone, 2, vocabulary=toy_vocabulary, verbose=False)
    assert classifier.preprocessor.sequence_length == 32


def test_a_single_string_is_one_text(env):
    assert validation.check_texts("a good film", "x") == ["a good film"]
    assert env["classifier"].predict("a good film", verbose=0).shape == (1, 2)
