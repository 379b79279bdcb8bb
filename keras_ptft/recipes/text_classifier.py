"""Text classification: raw strings in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.convert.resolve import resolve_checkpoint, sentence_transformers_pooling
from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.data.preprocessing import BertPreprocessor
from keras_ptft.recipes import techniques
from keras_ptft.recipes.techniques import apply_techniques
from keras_ptft.tasks.text_classifier import SparseMacroF1, TextClassifier  # noqa: F401 (re-exported)
from keras_ptft.training.optimization import resolve_learning_rate
from keras_ptft.validation import check_num_classes, check_sequence_length


def text_classifier(
    backbone_or_path: keras.Model | str | os.PathLike,
    num_classes: int,
    *,
    vocabulary: Sequence[str] | str | None = None,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    label_names: Sequence[str] | None = None,
    pooling: str = "auto",
    learning_rate: float | str = "auto",
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
    dropout: float = 0.1,
    lowercase: bool = True,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    schedule: str = "linear",
    loss: str = "cross_entropy",
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    l1: float = 0.0,
    l2: float = 0.0,
    clipvalue: float | None = None,
    gradient_accumulation_steps: int | None = None,
    use_ema: bool = False,
    precision: str | None = None,
    layerwise_lr_decay: float | None = None,
    freeze_backbone: bool = False,
    freeze_layers: int = 0,
    lora_rank: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    bucketing: bool | int | Sequence[int] = True,
    distribution=None,
    verbose: bool = True,
    **compile_kwargs,
) -> TextClassifier:
    """A compiled text classifier, ready for `fit()` on `(text, label)` data.

    Defaults follow BERT fine-tuning practice (learning rate by width, see `learning_rate`): AdamW (weight decay 0.01, none on LayerNorm and
    biases), linear warm-up over the first 10% of steps then linear decay to 0, gradient clipping
    at global norm 1.0, dropout 0.1 before the softmax. The schedule's length is taken from the
    first `fit()` call (epochs x batches) unless `total_steps` is given.

    Args:
        backbone_or_path: a backbone object, or any checkpoint folder
            (`keras_ptft.convert.load_checkpoint`: saved here with `save_to_preset`, a keras-hub
            preset, a Hugging Face or sentence-transformers BERT folder); the folder's tokenizer is used.
        num_classes: int. Number of classes, at least 2.
        vocabulary: list of str or str. Needed with a backbone object when no `preprocessor` is
            given.
        preprocessor: a `keras_ptft.data.BertPreprocessor`, instead of `vocabulary`.
        sequence_length: int or None. Token length texts are truncated/padded to; defaults to
            the backbone's `max_sequence_length`, capped at 128.
        label_names: list of str or None. Names of the classes.
        pooling: str. `"cls"` (the backbone's pooled [CLS] output), `"mean"` (the mean of the
            token vectors over non-padding tokens) or `"auto"`: the pooling a checkpoint folder
            declares (sentence-transformers' `1_Pooling/config.json`: mean for all-MiniLM-L6-v2,
            whose [CLS] pooler is untrained), else `"cls"`.
        learning_rate: float or `"auto"`. Peak learning rate. `"auto"` picks it by the backbone's
            width (`keras_ptft.training.optimization.auto_learning_rate`): BERT's 5e-5 for
            `hidden_dim` >= 384 (BERT-base, MiniLM), larger for the narrower tiny/mini encoders
            (1.35e-3 at 128), which learn next to nothing at 5e-5 in a few epochs.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        dropout: float. Dropout before the classification layer.
        lowercase: bool. Used when building a preprocessor from `vocabulary`.
        optimizer: str or optimizer. `"sgd"`, `"momentum"`, `"adam"`, `"adamw"`, `"adagrad"`,
            `"adadelta"`, `"lion"`, or an optimizer object used as is.
        schedule: str. Decay after the warm-up: a `keras_ptft.schedules.WarmupDecay` decay
            (`"linear"`, `"cosine"`, `"polynomial"`, `"exponential"`, `"inverse_sqrt"`,
            `"constant"`) or `"one_cycle"`.
        loss: str. `"cross_entropy"`, `"focal"` or `"hinge"`.
        label_smoothing: float. Label smoothing of the cross-entropy and focal losses.
        focal_gamma: float. Focusing parameter of the focal loss.
        l1: float. L1 penalty on kernels and embeddings.
        l2: float. L2 penalty on kernels and embeddings.
        clipvalue: float or None. Clip each gradient element (instead of `clipnorm`).
        gradient_accumulation_steps: int or None. Batches whose gradients are averaged per update.
        use_ema: bool. Keep an exponential moving average of the weights (used after `fit`).
        precision: str or None. `"mixed_bfloat16"` for bfloat16 compute with float32 weights;
            None keeps the backbone's policy.
        layerwise_lr_decay: float or None. Each encoder block below the top learns this factor
            more slowly (e.g. 0.8).
        freeze_backbone: bool. Train the head only.
        freeze_layers: int. Freeze the embeddings and this many lowest encoder blocks.
        lora_rank: int or None. Train rank-`lora_rank` LoRA adapters (keras-hub `enable_lora`)
            and the head instead of the backbone.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model
            (`keras_ptft.training.resumable_callbacks`); run the same command again after a
            crash to continue.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets
            validation data, else `"loss"`.
        seed: int or None. Seed of the shuffling; None follows `keras.utils.set_random_seed`.
        bucketing: bool, int or list of int. Length-bucketed batches with dynamic padding: True
            (4 buckets from the data's length quantiles), a number of buckets, explicit bucket
            lengths, or False for fixed padding to `sequence_length`. Text pairs are bucketed on
            their packed length.
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
        verbose: bool. Print the trainable-parameter count.
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    classifier = kp.recipes.text_classifier("saved_models/my_bert", num_classes=2)
    classifier.fit(["a fine film", "a dull film"], [1, 0], epochs=1)
    classifier.predict(["what a fine film"])
    ```
    """
    check_bucketing(bucketing)  # refused before any model is built
    check_num_classes(num_classes)
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase)
    learning_rate = resolve_learning_rate(learning_rate, backbone)
    pooling = resolve_pooling(pooling, backbone_or_path)
    if precision is not None:
        backbone = techniques.with_dtype_policy(backbone, precision)
    classifier = TextClassifier(
        backbone, num_classes, preprocessor=preprocessor, dropout=dropout, label_names=label_names,
        pooling=pooling, compile=False, distribution=distribution,
    )
    apply_techniques(
        classifier,
        classifier.backbone,  # under a distribution, the copy placed on the devices
        compile_kwargs,
        optimizer=optimizer,
        learning_rate=learning_rate,
        schedule=schedule,
        warmup_ratio=warmup_ratio,
        total_steps=total_steps,
        weight_decay=weight_decay,
        clipnorm=clipnorm,
        clipvalue=clipvalue,
        gradient_accumulation_steps=gradient_accumulation_steps,
        use_ema=use_ema,
        l1=l1,
        l2=l2,
        layerwise_lr_decay=layerwise_lr_decay,
        freeze_backbone=freeze_backbone,
        freeze_layers=freeze_layers,
        lora_rank=lora_rank,
        verbose=verbose,
    )
    if "loss" not in compile_kwargs and (loss != "cross_entropy" or label_smoothing):
        compile_kwargs["loss"] = techniques.make_loss(loss, num_classes, label_smoothing, focal_gamma)
    elif loss not in techniques.CLASSIFICATION_LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; valid names: {list(techniques.CLASSIFICATION_LOSSES)}.")
    classifier.compile(**compile_kwargs)
    # After the techniques (LoRA adds weights): a foreign checkpoint is refused now, not at fit.
    classifier.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)
    return classifier


def resolve_pooling(pooling: str, backbone_or_path, default: str = "cls") -> str:
    """`"auto"` becomes the pooling a sentence-transformers folder declares, else `default`."""
    if pooling != "auto":
        return pooling
    declared = None
    if isinstance(backbone_or_path, (str, os.PathLike)):
        declared = sentence_transformers_pooling(backbone_or_path)
    return declared or default


def resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase):
    """The backbone (loaded when given a folder) and a matching preprocessor; shared by the
    text recipes."""
    strip_accents = None
    # Any checkpoint folder: saved here, a keras-hub preset, a Hugging Face or a
    # sentence-transformers folder (keras_ptft.convert.resolve); a backbone object passes through.
    checkpoint = resolve_checkpoint(backbone_or_path, sequence_length=sequence_length, expected="a BERT-style encoder")
    backbone, tokenizer = checkpoint.backbone, checkpoint.tokenizer
    if not isinstance(backbone.input, dict) or "segment_ids" not in backbone.input:
        raise checkpoint.wrong_model("a BERT-style encoder (inputs token_ids, segment_ids, padding_mask)")
    if preprocessor is None and vocabulary is None and checkpoint.preprocessor is not None:
        preprocessor = checkpoint.preprocessor
    if preprocessor is None and vocabulary is None and checkpoint.path is not None:
        if tokenizer is None:
            raise FileNotFoundError(
                f"{checkpoint.path!r} holds a backbone but no tokenizer; pass `vocabulary=` or `preprocessor=`."
            )
        vocabulary = tokenizer.get_vocabulary()
        lowercase, strip_accents = tokenizer.lowercase, tokenizer.strip_accents
    if preprocessor is None:
        sequence_length = check_sequence_length(sequence_length, backbone, minimum=3)
    else:
        check_sequence_length(preprocessor.sequence_length, backbone, "preprocessor.sequence_length", minimum=3)
    if preprocessor is None:
        if vocabulary is None:
            raise ValueError("The recipe needs `vocabulary=` or `preprocessor=` with a backbone object.")
        preprocessor = BertPreprocessor(
            vocabulary, sequence_length=sequence_length, lowercase=lowercase, strip_accents=strip_accents
        )
    if preprocessor.vocabulary_size != backbone.vocabulary_size:
        raise ValueError(
            f"The preprocessor's vocabulary has {preprocessor.vocabulary_size} tokens but the "
            f"backbone's `vocabulary_size` is {backbone.vocabulary_size}; they must match."
        )
    return backbone, preprocessor
