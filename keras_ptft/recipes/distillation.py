"""Knowledge distillation of a fine-tuned text or image classifier into a smaller backbone.

| piece | formula / rule |
|---|---|
| soft targets | `p_T = softmax(log p / T)` of the teacher's probabilities `p` (the teacher's logits up to a constant) |
| distillation loss | `KL(p_T^teacher ‖ p_T^student) · T²` (Hinton et al. 2015; DistilBERT), per example |
| hard-label loss | `alpha · CE(label, p^student) + (1 - alpha) · KL · T²` on the labeled examples; unlabeled ones get `KL · T²` alone |
| teacher cost | the teacher labels each distinct set of texts once; the probabilities are memoised and, with `cache_dir`, written to `<cache_dir>/<sha256 of teacher weights + texts>.npy` |
| hidden states (optional) | `+ hidden_weight · mean over (i → j) in layer_map of Σ_t m_t ‖W_i h_i^student(t) + b_i − h_j^teacher(t)‖² / (Σ_t m_t · d_teacher)`: TinyBERT's MSE (Jiao et al. 2020) over the real tokens (`m` = padding mask), `W_i` a learned projection when the widths differ (identity otherwise) |
| default `layer_map` | uniform: student block `i` ← teacher block `round((i + 1) · T / S) − 1` (halves rounded up), `S`, `T` the numbers of blocks |

Why not `keras.distillation.Distiller` (Keras 3.12+): it runs the teacher on every training step
and feeds teacher and student the *same* input tensors, so it needs one shared tokenizer, cannot
reuse teacher outputs across epochs, and returns a `Distiller` wrapper whose `fit` is Keras' (no
raw strings, no bucketing). Here each model tokenizes raw strings with its own preprocessor, the
teacher runs once per text set, and the student is a plain `TextClassifier`. The soft loss is
Keras' own `LogitsDistillation` formula (softmax of logits / T, `keras.losses.kl_divergence`,
times T²), written per example because the hard-label weight applies per example.

Hidden-state transfer runs the frozen teacher on every training step, on the student's own token
ids (so it needs one shared tokenizer), inside `HiddenStateDistiller`, a training-only model that
shares the student's weights and owns the projections; `fit` trains it (`Task.training_model`),
so the student stays a plain `TextClassifier` that saves and exports without them. Why not
`keras.distillation.FeatureDistillation`: it names one top-level layer per loss (our blocks sit
inside the backbone, a nested model), has no projection for different widths, and averages over
every position, padding included; the masked MSE here is three lines. Attention transfer
(TinyBERT's second term) is not offered: keras-hub's `TransformerEncoder` never returns its
attention probabilities, so getting them means running every attention layer a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import keras
import numpy as np

from keras_ptft.recipes.image_classifier import image_classifier
from keras_ptft.recipes.text_classifier import text_classifier
from keras_ptft.tasks.image_classifier import ImageClassifier
from keras_ptft.tasks.text_classifier import TextClassifier
from keras_ptft.validation import check_labels

# Probabilities are clipped before the log that turns them back into (shifted) logits.
_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="keras_ptft")
class SoftTargetLoss(keras.losses.Loss):
    """Distillation loss over `distill`'s targets: `(batch, 2 * num_classes)` rows holding the
    teacher's probabilities then a one-hot label (all zeros when the example is unlabeled).

    Plain integer labels (a loaded student, trained again without its teacher) get cross-entropy.

    Args:
        num_classes: int. The number of classes.
        temperature: float > 0. Softening temperature T.
        alpha: float in [0, 1]. Weight of the hard-label cross-entropy on labeled examples.

    Example:
    ```python
    loss = SoftTargetLoss(num_classes=2, temperature=2.0)
    loss([[0.9, 0.1, 0.0, 0.0]], [[0.6, 0.4]])  # KL(tempered teacher || tempered student) * 4
    ```
    """

    def __init__(self, num_classes: int, temperature: float = 2.0, alpha: float = 0.0, name="soft_target_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.temperature = check_temperature(temperature)
        self.alpha = check_alpha(alpha)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float32")
        if y_true.shape[-1] == self.num_classes:  # one-hot labels (a loaded image student)
            return keras.losses.categorical_crossentropy(ops.cast(y_true, "float32"), y_pred)
        if y_true.shape[-1] != 2 * self.num_classes:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        y_true = ops.cast(y_true, "float32")
        teacher, hard = y_true[:, : self.num_classes], y_true[:, self.num_classes:]
        soft_kl = keras.losses.kl_divergence(self.soften(teacher), self.soften(y_pred)) * self.temperature ** 2
        labeled = ops.sum(hard, axis=-1)
        cross_entropy = -ops.sum(hard * ops.log(ops.clip(y_pred, _EPSILON, 1.0)), axis=-1)
        mixed = self.alpha * cross_entropy + (1.0 - self.alpha) * soft_kl
        return labeled * mixed + (1.0 - labeled) * soft_kl

    def soften(self, probabilities):
        """`softmax(log p / T)`: the probabilities at temperature T."""
        logits = keras.ops.log(keras.ops.clip(probabilities, _EPSILON, 1.0))
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "temperature": self.temperature,
                "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_ptft")
class SoftTargetAccuracy(keras.metrics.Mean):
    """Accuracy of the student against the teacher's class (`against="teacher"`, the agreement)
    or against the given labels (`against="labels"`, labeled examples only) on `distill`'s
    targets; plain integer labels count as labels for both.

    Args:
        num_classes: int. The number of classes.
        against: str. `"teacher"` or `"labels"`.
    """

    def __init__(self, num_classes: int, against: str = "teacher", name=None, **kwargs):
        if against not in ("teacher", "labels"):
            raise ValueError(f'`against` must be "teacher" or "labels", received against={against!r}.')
        super().__init__(name=name or ("agreement" if against == "teacher" else "accuracy"), **kwargs)
        self.num_classes, self.against = int(num_classes), against

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        predicted = ops.argmax(y_pred, axis=-1)
        if y_true.shape[-1] == self.num_classes:  # one-hot labels (a loaded image student)
            reference, weight = ops.argmax(y_true, axis=-1), None
        elif y_true.shape[-1] != 2 * self.num_classes:
            reference, weight = ops.reshape(ops.cast(y_true, "int32"), (-1,)), None
        elif self.against == "teacher":
            reference, weight = ops.argmax(y_true[:, : self.num_classes], axis=-1), None
        else:
            hard = y_true[:, self.num_classes:]
            reference, weight = ops.argmax(hard, axis=-1), ops.sum(hard, axis=-1)
        matches = ops.cast(ops.equal(ops.cast(predicted, "int32"), ops.cast(reference, "int32")), "float32")
        if sample_weight is not None:
            weight = sample_weight if weight is None else weight * ops.reshape(sample_weight, (-1,))
        return super().update_state(matches, sample_weight=weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "against": self.against}


class TeacherTargets:
    """The targets a distilled student trains on: the teacher's probabilities of the inputs (computed
    once per distinct text set and teacher weights; cached on disk with `cache_dir`) and the
    one-hot labels when given. A task's `target_source` (`TextClassifier`, `ImageClassifier`).

    Args:
        teacher: the fine-tuned `TextClassifier` or `ImageClassifier` that labels the inputs.
        same_tokenizer: bool. Whether teacher and student share a tokenizer, which preprocessed
            (token id) inputs need.
        cache_dir: str or None. Folder of the `.npy` cache files.
        batch_size: int. Batch size of the teacher's `predict`.
    """

    def __init__(self, teacher: TextClassifier, *, same_tokenizer: bool, cache_dir=None, batch_size: int = 64):
        self.teacher, self.same_tokenizer = teacher, same_tokenizer
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.batch_size = batch_size
        self.teacher_calls = 0  # how many times the teacher ran (the cache's tests read it)
        #: None, or the `HiddenStateDistiller` the student's `fit` trains (`hidden_weight` > 0).
        self.training_model = None
        self._memory: dict[str, np.ndarray] = {}

    def __call__(self, x, y=None) -> np.ndarray:
        probabilities = self.probabilities(x)
        hard = np.zeros_like(probabilities)
        if y is not None:
            labels = check_labels(y, self.teacher.num_classes, "y")
            if len(labels) != len(probabilities):
                raise ValueError(f"`y` has {len(labels)} labels for {len(probabilities)} examples in `x`.")
            hard[np.arange(len(labels)), labels.reshape(-1)] = 1.0
        return np.concatenate([probabilities, hard], axis=-1).astype("float32")

    def probabilities(self, x) -> np.ndarray:
        """The teacher's probabilities of `x`: from memory, from `cache_dir`, or computed now."""
        if hasattr(x, "element_spec") or (hasattr(x, "shape") and not isinstance(x, np.ndarray)):
            raise ValueError("Distillation needs `x` in memory (texts, text pairs or feature arrays), so the "
                             f"teacher labels it once; received {type(x).__name__}.")
        if isinstance(x, dict) and not self.same_tokenizer:
            raise ValueError("`x` holds token ids, but teacher and student use different tokenizers (their "
                             "vocabularies differ); pass raw strings, which each model tokenizes itself.")
        key = self.digest(x)
        if key in self._memory:
            return self._memory[key]
        path = None if self.cache_dir is None else os.path.join(self.cache_dir, f"{key}.npy")
        if path is not None and os.path.exists(path):
            probabilities = np.load(path)
        else:
            self.teacher_calls += 1
            probabilities = np.asarray(self.teacher.predict(x, batch_size=self.batch_size, verbose=0), "float32")
            if path is not None:
                os.makedirs(self.cache_dir, exist_ok=True)
                np.save(path + ".partial.npy", probabilities)  # atomic: a crash never leaves half a file
                os.replace(path + ".partial.npy", path)
        self._memory[key] = probabilities
        return probabilities

    def digest(self, x) -> str:
        """SHA-256 of the teacher's weights and of the inputs: a changed teacher or text set never
        reuses stale probabilities."""
        digest = hashlib.sha256()
        for variable in self.teacher.weights:
            digest.update(variable.path.encode())
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
        if isinstance(x, dict):
            for name in sorted(x):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(np.asarray(x[name])).tobytes())
        elif isinstance(x, np.ndarray) and x.dtype.kind != "U":  # images
            digest.update(f"{x.dtype}{x.shape}".encode())
            digest.update(np.ascontiguousarray(x).tobytes())
        else:
            digest.update(json.dumps([list(part) for part in x] if isinstance(x, tuple) else list(x),
                                     ensure_ascii=False).encode())
        return digest.hexdigest()


class HiddenStateDistiller(keras.Model):
    """The training-only model of hidden-state distillation (TinyBERT): the student's loss plus
    `weight` times the masked MSE between mapped student and teacher block outputs (see the module
    docstring). It shares the student's weights and owns the projections; the teacher is read,
    never trained. `kp.recipes.distill(..., hidden_weight=...)` builds it and the student's `fit`
    trains it (never saved: the student is what one saves).

    Args:
        student: the student `TextClassifier` (compiled).
        teacher: the teacher `TextClassifier`, tokenizing like the student.
        layer_map: dict of int to int. Student block index -> teacher block index.
        weight: float >= 0. Weight of the hidden-state loss.
        metrics: list of metrics of the training run.

    Example:
    ```python
    student = kp.recipes.distill(teacher, small, vocabulary=vocab, hidden_weight=1.0)
    student.target_source.training_model.hidden_loss(student.preprocessor(["a fine film"]))
    ```
    """

    def __init__(self, student, teacher, layer_map: dict, weight: float, metrics=None, **kwargs):
        super().__init__(name="hidden_state_distiller", **kwargs)
        self.student, self.weight = student, float(weight)
        self.layer_map = dict(sorted(layer_map.items()))
        backbone, teacher_backbone = student.backbone, teacher.backbone
        # One pass gives the student's outputs and its hidden states: the blocks' own graph tensors.
        self.student_features = keras.Model(
            backbone.input,
            [backbone.output["sequence_output"], backbone.output["pooled_output"]]
            + [backbone.transformer_layers[i].output for i in self.layer_map],
        )
        self.teacher_features = keras.Model(
            teacher_backbone.input, [teacher_backbone.transformer_layers[j].output for j in self.layer_map.values()]
        )
        width, teacher_width = backbone.hidden_dim, teacher_backbone.hidden_dim
        self.projections = []
        for i, j in self.layer_map.items():
            if width == teacher_width:
                projection = keras.layers.Identity(name=f"projection_{i}_{j}")
            else:
                projection = keras.layers.Dense(teacher_width, dtype="float32", name=f"projection_{i}_{j}")
            projection.build((None, None, width))
            self.projections.append(projection)
        optimizer = student.optimizer
        # A copy: the student's own optimizer never holds projection slots, so a saved student
        # holds no trace of them. `exclude_from_weight_decay` is not in the optimizer's config.
        copy = type(optimizer).from_config(optimizer.get_config())
        excluded = getattr(optimizer, "_exclude_from_weight_decay_names", None)
        if excluded and hasattr(copy, "exclude_from_weight_decay"):
            copy.exclude_from_weight_decay(var_names=list(excluded))
        self.compile(optimizer=copy, loss=student.loss, metrics=metrics)

    def call(self, x, training=False):
        sequence, pooled, *hidden = self.student_features(x, training=training)
        probabilities = self.student.classify({"sequence_output": sequence, "pooled_output": pooled},
                                              x["padding_mask"], training=training)
        self.add_loss(self.weight * self.hidden_loss(x, hidden))
        return probabilities

    def hidden_loss(self, x, student_hidden=None):
        """The hidden-state loss (unweighted) of one batch of token features `x`."""
        ops = keras.ops
        if student_hidden is None:
            student_hidden = self.student_features(x, training=False)[2:]
        teacher_hidden = keras.tree.flatten(self.teacher_features(x, training=False))
        mask = ops.expand_dims(ops.cast(x["padding_mask"], "float32"), -1)
        losses = []
        for projection, student_states, teacher_states in zip(self.projections, student_hidden, teacher_hidden):
            difference = projection(ops.cast(student_states, "float32")) - ops.stop_gradient(
                ops.cast(teacher_states, "float32"))
            losses.append(ops.sum(mask * ops.square(difference)) / (ops.sum(mask) * difference.shape[-1]))
        return ops.mean(ops.stack(losses))

    # The teacher's variables are state the step reads, never trains: left out of the trainable
    # lists (rather than `teacher.trainable = False`, which would change the caller's teacher).
    @property
    def trainable_weights(self):
        return self.student.trainable_weights + [w for p in self.projections for w in p.trainable_weights]

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_weights(self):
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    @property
    def non_trainable_variables(self):
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.variables if id(v) not in trainable]


def distill(
    teacher: TextClassifier,
    student_backbone_or_path: keras.Model | str | os.PathLike,
    *,
    temperature: float = 2.0,
    alpha: float = 0.0,
    hidden_weight: float = 0.0,
    layer_map: dict[int, int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    label_names: Sequence[str] | None = None,
    teacher_batch_size: int = 64,
    **recipe_kwargs,
) -> TextClassifier:
    """A compiled student classifier that learns a fine-tuned teacher's soft predictions.

    The student is built by `kp.recipes.text_classifier` (same defaults, same keyword arguments)
    with the teacher's classes, then compiled with `SoftTargetLoss` and two metrics:
    `agreement` (with the teacher's class) and `accuracy` (with the labels, when given). Its
    `fit` / `evaluate` take unlabeled texts, which the teacher labels, or `(texts, labels)`.
    Each model tokenizes raw strings with its own preprocessor, so any two tokenizers work on raw
    text; token-id inputs need the same vocabulary. The teacher runs once per distinct text set
    (see the module docstring), not once per epoch. The result saves, loads and exports like any
    classifier; to train it further on labels alone, set `student.target_source = None` and
    `compile()` it again.

    An `ImageClassifier` teacher gets an `ImageClassifier` student, built by
    `kp.recipes.image_classifier` (its keyword arguments) on a ViT backbone taking the same image
    shape; its `fit` takes uint8 images, unlabeled or with labels, as the image tasks do.

    Args:
        teacher: a fine-tuned `TextClassifier` or `ImageClassifier`.
        student_backbone_or_path: the student's backbone, or the folder of one (as
            `text_classifier` / `image_classifier` take it; e.g. `Bert.from_size("mini", ...)`,
            a shallower copy of the teacher's backbone, or a smaller `ViT`).
        temperature: float > 0. Softening temperature T of both distributions; the KL term is
            multiplied by T².
        alpha: float in [0, 1]. Weight of the hard-label cross-entropy on labeled examples (the
            KL term gets `1 - alpha`); 0 learns from the teacher alone.
        hidden_weight: float >= 0. Weight of the TinyBERT hidden-state loss (the masked MSE
            between mapped student and teacher block outputs, projected by a learned Dense when
            the widths differ); 0 (the default) turns it off. It runs the teacher on every step,
            on the student's token ids, so teacher and student must share a tokenizer.
        layer_map: dict of int to int, or None. Student block index -> teacher block index of the
            hidden-state loss; None maps uniformly (student block `i` to teacher block
            `round((i + 1) * T / S) - 1` for `S` student and `T` teacher blocks).
        cache_dir: str or None. Folder where the teacher's probabilities are kept between runs,
            keyed by a digest of the teacher's weights and the texts.
        label_names: list of str or None. Must equal the teacher's if given (the student keeps
            the teacher's classes).
        teacher_batch_size: int. Batch size of the teacher's `predict`.
        **recipe_kwargs: any `kp.recipes.text_classifier` argument (`vocabulary`,
            `preprocessor`, `learning_rate`, `pooling`, ...; `kp.recipes.image_classifier`'s for
            an image teacher), except `num_classes` and `loss`.

    Returns:
        The compiled student: a `TextClassifier`, or an `ImageClassifier` for an image teacher.

    Example:
    ```python
    small = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocab))
    student = kp.recipes.distill(teacher, small, vocabulary=vocab, temperature=2.0)
    student.fit(unlabeled_texts, epochs=3)          # the teacher labels the texts once
    student.evaluate(dev_texts, dev_labels)         # loss, accuracy, agreement
    # TinyBERT-style: also match block outputs (same tokenizer), student block 0 -> teacher block 3.
    student = kp.recipes.distill(teacher, small, vocabulary=vocab, hidden_weight=1.0, layer_map={0: 3})
    # Images: a fine-tuned ImageClassifier teacher, a smaller ViT student, uint8 images in.
    student = kp.recipes.distill(image_teacher, kp.models.ViT.from_size("tiny"), learning_rate=1e-3)
    student.fit(images, epochs=3)
    ```
    """
    if not isinstance(teacher, (TextClassifier, ImageClassifier)):
        raise TypeError("`teacher` must be a fine-tuned TextClassifier or ImageClassifier, received "
                        f"{type(teacher).__name__}.")
    temperature, alpha = check_temperature(temperature), check_alpha(alpha)
    if isinstance(student_backbone_or_path, (TextClassifier, ImageClassifier)):
        raise ValueError("`student_backbone_or_path` must be a backbone or its folder, not a classifier: the "
                         "student gets the teacher's head and classes.")
    for name in ("num_classes", "loss"):
        if name in recipe_kwargs:
            raise ValueError(f"`{name}` is set by distillation (the teacher's classes, SoftTargetLoss); drop it.")
    if label_names is not None and list(label_names) != list(teacher.label_names or []):
        raise ValueError(f"`label_names` must be the teacher's label names {teacher.label_names}, received "
                         f"{list(label_names)}: a student cannot learn a different label set from this teacher.")
    hidden_weight = check_hidden_weight(hidden_weight, layer_map)
    if isinstance(teacher, ImageClassifier):
        if hidden_weight:
            raise ValueError("`hidden_weight` > 0 is for text classifiers; an image student learns the "
                             "teacher's soft targets only (set `hidden_weight=0`).")
        return _distill_images(teacher, student_backbone_or_path, temperature, alpha, cache_dir,
                               teacher_batch_size, recipe_kwargs)
    if hidden_weight and recipe_kwargs.get("checkpoint_dir") is not None:
        raise ValueError("`checkpoint_dir` cannot be used with `hidden_weight` > 0 (Keras' checkpoints would "
                         "save the training model, teacher included); save the student after `fit`.")
    num_classes = teacher.num_classes
    recipe_kwargs.setdefault("verbose", False)
    student = text_classifier(student_backbone_or_path, num_classes, label_names=teacher.label_names,
                              **recipe_kwargs)
    compile_student(student, temperature, alpha)
    same_tokenizer = _same_tokenizer(teacher.preprocessor, student.preprocessor)
    targets = TeacherTargets(teacher, same_tokenizer=same_tokenizer, cache_dir=cache_dir,
                             batch_size=teacher_batch_size)
    if hidden_weight:
        check_hidden_state_pair(teacher, student, same_tokenizer)
        layer_map = check_layer_map(layer_map, len(student.backbone.transformer_layers),
                                    len(teacher.backbone.transformer_layers))
        targets.training_model = HiddenStateDistiller(student, teacher, layer_map, hidden_weight,
                                                      metrics=soft_target_metrics(num_classes))
    student.target_source = targets
    return student


def soft_target_metrics(num_classes: int) -> list:
    """A distilled student's metrics: `accuracy` (against the labels) and `agreement` (with the teacher)."""
    return [SoftTargetAccuracy(num_classes, "labels"), SoftTargetAccuracy(num_classes, "teacher")]


def compile_student(student, temperature: float, alpha: float) -> None:
    """Compiles a student with its recipe's optimizer, `SoftTargetLoss` and `soft_target_metrics`."""
    student.compile(optimizer=student.optimizer,
                    loss=SoftTargetLoss(student.num_classes, temperature=temperature, alpha=alpha),
                    metrics=soft_target_metrics(student.num_classes))


def _distill_images(teacher, student_backbone_or_path, temperature, alpha, cache_dir, teacher_batch_size,
                    recipe_kwargs) -> ImageClassifier:
    """`distill` of an `ImageClassifier`: the student built by `kp.recipes.image_classifier`."""
    num_classes = teacher.num_classes
    recipe_kwargs.setdefault("verbose", False)
    student = image_classifier(student_backbone_or_path, num_classes, label_names=teacher.label_names,
                               **recipe_kwargs)
    if tuple(student.image_shape) != tuple(teacher.image_shape):
        raise ValueError(f"`student_backbone_or_path` takes images of shape {tuple(student.image_shape)}, the "
                         f"teacher {tuple(teacher.image_shape)}: both must read the same images.")
    compile_student(student, temperature, alpha)
    student.target_source = TeacherTargets(teacher, same_tokenizer=True, cache_dir=cache_dir,
                                           batch_size=teacher_batch_size)
    return student


def uniform_layer_map(student_layers: int, teacher_layers: int) -> dict[int, int]:
    """TinyBERT's uniform mapping: student block `i` learns teacher block `round((i + 1) * T / S) - 1`,
    halves rounded up (so 2 of 6 blocks map to blocks 2 and 5, the last to the last).

    Example:
    ```python
    uniform_layer_map(2, 6)  # {0: 2, 1: 5}
    ```
    """
    return {i: int(np.floor((i + 1) * teacher_layers / student_layers + 0.5)) - 1 for i in range(student_layers)}


def check_layer_map(layer_map, student_layers: int, teacher_layers: int) -> dict[int, int]:
    """`layer_map` checked against the block counts (None: `uniform_layer_map`)."""
    if layer_map is None:
        return uniform_layer_map(student_layers, teacher_layers)
    expected = (f"a non-empty dict from student block indices in [0, {student_layers}) to teacher block "
                f"indices in [0, {teacher_layers})")
    if not isinstance(layer_map, dict) or not layer_map:
        raise ValueError(f"`layer_map` must be {expected}, received layer_map={layer_map!r}.")
    for student_block, teacher_block in layer_map.items():
        for index, count in ((student_block, student_layers), (teacher_block, teacher_layers)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
                raise ValueError(f"`layer_map` must be {expected}, received layer_map={layer_map!r} "
                                 f"(entry {student_block!r}: {teacher_block!r} is out of range).")
    return {int(k): int(v) for k, v in layer_map.items()}


def check_hidden_weight(hidden_weight, layer_map) -> float:
    if isinstance(hidden_weight, bool) or not isinstance(hidden_weight, (int, float)) or not hidden_weight >= 0:
        raise ValueError(f"`hidden_weight` must be a number >= 0, received hidden_weight={hidden_weight!r}.")
    if layer_map is not None and not hidden_weight:
        raise ValueError("`layer_map` is given but `hidden_weight` is 0, which turns the hidden-state loss off; "
                         "set `hidden_weight` > 0 (e.g. 1.0) or drop `layer_map`.")
    return float(hidden_weight)


def check_hidden_state_pair(teacher: TextClassifier, student: TextClassifier, same_tokenizer: bool) -> None:
    """Hidden states are compared token by token, so both models must read the same tokens."""
    if not same_tokenizer:
        raise ValueError("`hidden_weight` > 0 compares hidden states token by token, so the student must use the "
                         "teacher's tokenizer, but their vocabularies (or lowercasing) differ: pass the "
                         "teacher's `vocabulary` (or `preprocessor`) to `distill`, or set `hidden_weight=0`.")
    for name, model in (("teacher", teacher), ("student_backbone_or_path", student)):
        if not hasattr(model.backbone, "transformer_layers") or not hasattr(model.backbone, "hidden_dim"):
            raise ValueError(f"`hidden_weight` > 0 needs a backbone with `transformer_layers` (Bert) for "
                             f"`{name}`, received {type(model.backbone).__name__}.")
    length, teacher_length = student.preprocessor.sequence_length, teacher.backbone.max_sequence_length
    if length > teacher_length:
        raise ValueError(f"`sequence_length`={length} of the student is longer than the teacher's "
                         f"`max_sequence_length`={teacher_length}; the teacher reads the student's tokens.")


def check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"`temperature` must be a number > 0, received temperature={temperature!r}.")
    return float(temperature)


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be a number in [0, 1], received alpha={alpha!r}.")
    return float(alpha)


def _same_tokenizer(first, second) -> bool:
    vocabulary = lambda p: getattr(p, "vocabulary", None) or getattr(getattr(p, "tokenizer", None), "vocabulary", None)  # noqa: E731
    return (vocabulary(first) is not None and list(vocabulary(first)) == list(vocabulary(second) or [])
            and getattr(first, "lowercase", None) == getattr(second, "lowercase", None))
