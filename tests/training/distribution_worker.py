"""Distribution checks on virtual CPU devices (tests/training/test_distribution.py, through
`run_on_backend`). `main` returns the figures; the test asserts on them. JAX and TensorFlow run
in a process of their own: JAX gets two host devices from XLA_FLAGS (set by the test before JAX
starts); TensorFlow splits its CPU into two logical devices before its first op.
"""

import contextlib
import io
import os
import shutil
import tempfile
import time

import keras
import numpy as np

import keras_ptft as kp
import keras_ptft.cli  # noqa: F401
from keras_ptft.models.layout import check_layout_map
from keras_ptft.training.distribution import (
    check_global_batch_size,
    distributed_copy,
    describe,
    distribution_scope,
    resolve_distribution,
)

# One layer: each backbone's train step is compiled for one, two and model-parallel devices, and
# XLA's compile time grows with the layers; one layer holds every weight the layouts shard.
SIZE = dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0)
rng = np.random.default_rng(0)
TEXT = {
    "token_ids": rng.integers(1, 32, (8, 8)).astype("int32"),
    "segment_ids": np.zeros((8, 8), "int32"),
    "padding_mask": (np.arange(8)[None, :] < rng.integers(3, 9, (8, 1))).astype("int32"),
}
IMAGES = rng.uniform(0, 1, (8, 8, 8, 3)).astype("float32")
LABELS = rng.integers(0, 3, (8,)).astype("int32")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(27)]
TASK_TEXTS = [" ".join(f"w{(3 * i + j) % 27}" for j in range(3 + i % 4)) for i in range(16)]
# Toy pairs for the translator (both languages, so the tokenizer keeps every Chinese character).
PAIR_SOURCES = [" ".join(f"w{(5 * i + j) % 27}" for j in range(2 + i % 3)) for i in range(16)]
PAIR_TARGETS = ["".join("猫狗树水"[(i + j) % 4] for j in range(1 + i % 3)) + "。" for i in range(16)]
SECONDS = {}  # wall time of each section, returned with the figures (where the test's time goes)


@contextlib.contextmanager
def section(name):
    started = time.perf_counter()
    yield
    SECONDS[name] = round(time.perf_counter() - started, 2)


def bert():
    return kp.models.Bert(vocabulary_size=32, max_sequence_length=8, **SIZE)


def gpt():
    return kp.models.GPT(vocabulary_size=32, max_sequence_length=8, **SIZE)


def vit():
    return kp.models.ViT(image_shape=(8, 8, 3), patch_size=4, **SIZE)


def classifier(backbone):
    """A classification head over the backbone: one training step touches every weight."""
    inputs = backbone.input
    outputs = backbone(inputs)
    if isinstance(outputs, dict):
        outputs = outputs.get("pooled_output", outputs.get("sequence_output"))
    if len(outputs.shape) == 3:
        outputs = keras.layers.GlobalAveragePooling1D()(outputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(outputs))


def train(model, x, steps=3):
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(steps):
        model.train_on_batch(x, LABELS)
    return [np.asarray(w) for w in model.get_weights()]


def max_diff(a, b):
    return float(max(np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(a, b)))


def one_device(make_backbone, x):
    """The one-device reference: starting weights, outputs, and weights after `train`. Several
    distributions are compared to the same one, so it is made once per backbone."""
    keras.utils.set_random_seed(0)
    reference = classifier(make_backbone())
    initial = reference.get_weights()
    return initial, np.asarray(reference.predict(x, verbose=0)), train(reference, x)


def single_and_distributed(make_backbone, x, distribution, reference=None):
    initial, want_out, want = reference or one_device(make_backbone, x)
    with distribution_scope(distribution):
        model = classifier(make_backbone())
        model.set_weights(initial)
        got_out = np.asarray(model.predict(x, verbose=0))
        got = train(model, x)
    return model, float(np.max(np.abs(want_out - got_out))), max_diff(want, got)


def error_of(call):
    try:
        call()
    except (ValueError, TypeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def trained_classifier(distribution, shuffle=True, checkpoint_dir=None, epochs=2, predict=True, callbacks=()):
    """A TextClassifier trained for two epochs, built and trained under `distribution`; its
    predictions (None when `predict` is false: a run that is resumed later needs none).

    The same seed must give the same classifier on one device and on two: the same starting
    weights (re-creating the backbone under the distribution must not shift the head's seed) and
    the same updates from the same bucketed batches."""
    keras.utils.set_random_seed(0)
    options = {"distribution": distribution} if distribution else {}
    classifier = kp.tasks.TextClassifier(bert(), num_classes=2, seed=0, dropout=0.0, checkpoint_dir=checkpoint_dir,
                                         preprocessor=kp.data.BertPreprocessor(VOCAB, sequence_length=8), **options)
    classifier.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    history = classifier.fit(TASK_TEXTS, np.arange(16) % 2, batch_size=8, epochs=epochs, verbose=0, shuffle=shuffle,
                             callbacks=list(callbacks))
    trained_classifier.epochs_run = list(history.epoch)
    return np.asarray(classifier.predict(TASK_TEXTS, verbose=0)) if predict else None


class CopyAfterFirstEpoch(keras.callbacks.Callback):
    """Copies the checkpoint folder as the first epoch left it (the checkpoint callbacks run
    first): the folder of a one-device run killed after epoch 1, without training that run apart."""

    def __init__(self, source, target):
        super().__init__()
        self.source, self.target = source, target

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            shutil.copytree(self.source, self.target)


def resumed_across_device_counts(folder, second, reference):
    """Epoch 2 resumed under `second` from `folder` (epoch 1 trained there, then killed): the
    difference to two uninterrupted epochs on one device, and the epochs the history holds."""
    resumed = trained_classifier(second, shuffle=False, checkpoint_dir=folder, epochs=2)
    return {"diff": float(np.max(np.abs(resumed - reference))), "epochs": kp.training.load_history(folder)["epoch"],
            "resumed_epochs_run": trained_classifier.epochs_run}


def cli_pretrain_on_two_devices(model="bert", vocabulary_size=120, distribution="data"):
    folder = tempfile.mkdtemp()
    try:
        corpus = os.path.join(folder, "corpus.txt")
        with open(corpus, "w") as handle:
            # Packs into five full batches of four rows (measured): one train-step shape, one compile
            # (a short last batch of two would be a second program to compile).
            handle.write("\n".join(f"the {w} sat on the mat near the old {v}" for w in ("cat", "dog", "fox", "owl")
                                   for v in ("door", "tree", "wall", "road", "gate")) + "\n")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = kp.cli.main(["pretrain", model, "--corpus", corpus, "--output-dir", os.path.join(folder, model),
                                "--epochs", "1", "--batch-size", "4", "--vocabulary-size", str(vocabulary_size),
                                "--sequence-length", "16", "--distribution", distribution, "--devices", "2"])
        lines = out.getvalue().splitlines()
        return {"code": code, "mesh_line": next((line for line in lines if line.startswith("distribution:")), None),
                "loss_lines": [line for line in lines if "loss after" in line], "stderr": err.getvalue()[-500:],
                "saved": os.path.exists(os.path.join(folder, model, "config.json"))}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def seq2seq(tokenizer):
    return kp.models.Seq2Seq(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=16,
                             intermediate_dim=32, max_sequence_length=10, dropout=0.0)


def trained_translator(tokenizer, distribution):
    """`kp.recipes.translator` trained two epochs (4 steps on a global batch of 8, shuffled) under
    `distribution`: the translator, its starting and its final weights. Re-compiled with SGD, as
    the other equality checks: Adam divides by the root of tiny second moments, which turns the
    ~1e-7 reduction-order differences of a split batch into 1e-4 differences of the weights."""
    keras.utils.set_random_seed(0)
    translator = kp.recipes.translator(seq2seq(tokenizer), tokenizer, sequence_length=10, distribution=distribution)
    translator.compile(optimizer=keras.optimizers.SGD(0.5))
    initial = [np.asarray(w) for w in translator.get_weights()]
    translator.fit((PAIR_SOURCES, PAIR_TARGETS), batch_size=8, epochs=2, verbose=0)
    return translator, initial, [np.asarray(w) for w in translator.get_weights()]


def seq2seq_checks(data_parallel):
    """Translator and DenoisingLM under data parallelism; model parallelism refused for Seq2Seq."""
    tokenizer = kp.data.train_seq2seq_tokenizer(PAIR_SOURCES + PAIR_TARGETS, vocabulary_size=320)
    _, initial, want = trained_translator(tokenizer, None)
    translator, _, got = trained_translator(tokenizer, "data_parallel")
    kernel = next(v for v in translator.weights if v.path.endswith("query/kernel"))
    result = {"translator_diff": max_diff(want, got), "translator_moved": max_diff(initial, want),
              "translator_distribution": type(translator.distribution).__name__,
              "translator_devices": len(kernel.value.sharding.device_set),
              "translator_model_parallel_error": error_of(lambda: kp.recipes.translator(
                  seq2seq(tokenizer), tokenizer, sequence_length=10, distribution="model_parallel"))}
    keras.utils.set_random_seed(0)
    denoiser = kp.tasks.DenoisingLM(seq2seq(tokenizer), tokenizer, sequence_length=10, distribution=data_parallel)
    # The translator's loss, optimizer and batch shape: the same program, compiled once (the cache).
    denoiser.compile(optimizer=keras.optimizers.SGD(0.5))
    history = denoiser.fit((PAIR_SOURCES + PAIR_TARGETS) * 2, batch_size=8, epochs=2, verbose=0).history
    kernel = next(v for v in denoiser.weights if v.path.endswith("query/kernel"))
    result["denoiser"] = {"losses": [float(v) for v in history["loss"]],
                          "distribution": type(denoiser.distribution).__name__,
                          "devices": len(kernel.value.sharding.device_set)}
    return result


def main() -> dict:
    backend = keras.config.backend()
    result = {"backend": backend, "seconds": SECONDS}
    if backend == "torch":
        result["torch_error"] = error_of(lambda: resolve_distribution("data_parallel"))
    elif backend == "tensorflow":
        strategy = resolve_distribution("data_parallel", devices=2)
        result["describe"] = describe(strategy)
        result["replicas"] = strategy.num_replicas_in_sync
        with section("dp_bert"):
            _, result["dp_forward"], result["dp_weights"] = single_and_distributed(bert, TEXT, strategy)
        result["model_parallel_error"] = error_of(lambda: resolve_distribution("model_parallel", backbone=kp.models.Bert))
        result["batch_error"] = error_of(lambda: check_global_batch_size(5, strategy))
        # Tasks train under MirroredStrategy too. TensorFlow's distributed input does not keep the
        # one-device shuffle order, so equality is checked on unshuffled epochs.
        with section("classifier"):
            result["task_predictions_diff"] = float(np.max(np.abs(trained_classifier(None, shuffle=False)
                                                                  - trained_classifier(strategy, shuffle=False))))
        with section("mlm"):
            mlm = kp.tasks.MaskedLM(bert(), vocabulary=VOCAB, sequence_length=8, distribution=strategy)
            result["task_losses"] = [float(v) for v in
                                     mlm.fit(TASK_TEXTS, batch_size=8, epochs=2, verbose=0).history["loss"]]
    else:
        data_parallel = resolve_distribution("data_parallel")
        result["describe"] = describe(data_parallel)
        with section("reference_bert"):
            bert_reference = one_device(bert, TEXT)
        with section("dp_bert"):
            _, result["dp_forward"], result["dp_weights"] = single_and_distributed(bert, TEXT, data_parallel,
                                                                                   bert_reference)
        result["batch_error"] = error_of(lambda: check_global_batch_size(5, data_parallel))
        for name, make, x in (("bert", bert, TEXT), ("gpt", gpt, {k: TEXT[k] for k in ("token_ids", "padding_mask")}),
                              ("vit", vit, IMAGES)):
            with section(f"mp_{name}"):
                distribution = resolve_distribution("model_parallel", backbone=kp.models.Bert)
                model, forward, weights = single_and_distributed(make, x, distribution,
                                                                 bert_reference if name == "bert" else None)
            kernel = next(v for v in model.weights if v.path.endswith("query/kernel"))
            result[f"mp_{name}"] = {"forward": forward, "weights": weights, "query_spec": str(kernel.value.sharding.spec),
                                    "shards": len(kernel.value.addressable_shards)}
        with section("layout_and_copy"):
            mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], keras.distribution.list_devices())
            odd = kp.models.Bert(vocabulary_size=32, max_sequence_length=8, num_layers=1, num_heads=3, hidden_dim=12,
                                 intermediate_dim=32)
            result["layout_error"] = error_of(lambda: check_layout_map(kp.models.Bert.get_layout_map(mesh), odd))
            made_before = bert()
            copy = distributed_copy(made_before, resolve_distribution("model_parallel", backbone=kp.models.Bert))
            kernel = next(v for v in copy.weights if v.path.endswith("query/kernel"))
            result["copy"] = {"shards": len(kernel.value.addressable_shards),
                              "diff": float(np.max(np.abs(np.asarray(copy(TEXT)["sequence_output"])
                                                          - np.asarray(made_before(TEXT)["sequence_output"]))))}
            result["copy_layout_error"] = error_of(lambda: distributed_copy(
                odd, resolve_distribution("model_parallel", backbone=kp.models.Bert)))
        # A task built with distribution= trains under it (the one fit path enters the scope and
        # checks the global batch).
        with section("mlm"):
            mlm = kp.tasks.MaskedLM(bert(), vocabulary=VOCAB, sequence_length=8, distribution="data_parallel")
            history = mlm.fit(TASK_TEXTS, batch_size=8, epochs=2, verbose=0).history
            result["task_losses"] = [float(v) for v in history["loss"]]
            result["task_distribution"] = type(mlm.distribution).__name__
            result["task_batch_error"] = error_of(lambda: mlm.fit(TASK_TEXTS, batch_size=5, epochs=1, verbose=0))
        with section("classifier_shuffled"):
            result["task_predictions_diff"] = float(np.max(np.abs(trained_classifier(None)
                                                                  - trained_classifier("data_parallel"))))
        # The CLI's --distribution/--devices reach the task and print the mesh.
        with section("cli_bert"):
            result["cli"] = cli_pretrain_on_two_devices()
        # A checkpoint written on two devices resumes on one, and the other way round.
        with section("resume"):
            folder = tempfile.mkdtemp()
            try:
                # The uninterrupted one-device reference also leaves the one-device epoch 1.
                one_device_epoch_1 = os.path.join(folder, "one_device")
                unshuffled = trained_classifier(None, shuffle=False, checkpoint_dir=os.path.join(folder, "reference"),
                                                callbacks=[CopyAfterFirstEpoch(os.path.join(folder, "reference"),
                                                                               one_device_epoch_1)])
                two_device_epoch_1 = os.path.join(folder, "two_devices")
                trained_classifier("data_parallel", shuffle=False, checkpoint_dir=two_device_epoch_1, epochs=1,
                                   predict=False)
                result["resume_2_to_1"] = resumed_across_device_counts(two_device_epoch_1, None, unshuffled)
                result["resume_1_to_2"] = resumed_across_device_counts(one_device_epoch_1, "data_parallel", unshuffled)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        result["unknown_name_error"] = error_of(lambda: resolve_distribution("pipeline"))
        result["devices_error"] = error_of(lambda: resolve_distribution("data_parallel", devices=4))
        with section("seq2seq"):
            result.update(seq2seq_checks(data_parallel))
        with section("cli_seq2seq"):
            result["cli_seq2seq"] = cli_pretrain_on_two_devices("seq2seq", vocabulary_size=320)
            result["cli_seq2seq_model"] = cli_pretrain_on_two_devices("seq2seq", vocabulary_size=320,
                                                                      distribution="model")
    return result
