"""The image recipes take the text recipes' options under the same names (freeze_backbone,
freeze_layers, lora_rank, precision, seed, checkpoint_dir), and every recipe passes
`distribution=` to its task."""

import keras
import numpy as np
import pytest

import keras_ptft as kp

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (8, 8, 8, 3), dtype="uint8")
LABELS = RNG.integers(0, 2, 8)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]


def _vit(**kwargs):
    keras.utils.set_random_seed(0)
    return kp.models.ViT(image_shape=(8, 8, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=8,
                         intermediate_dim=16, **kwargs)


def _weights(layer):
    return [np.array(w) for w in layer.get_weights()]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def _fit(task):
    task.fit(IMAGES, LABELS, batch_size=4, epochs=1, verbose=0)


def test_freeze_backbone_trains_the_head_only():
    classifier = kp.recipes.image_classifier(_vit(), 2, freeze_backbone=True, verbose=False)
    backbone, head = _weights(classifier.backbone), _weights(classifier.output_dense)
    _fit(classifier)
    assert not _changed(backbone, _weights(classifier.backbone))
    assert _changed(head, _weights(classifier.output_dense))


def test_freeze_layers_freezes_the_embeddings_and_the_lowest_blocks():
    classifier = kp.recipes.image_classifier(_vit(), 2, freeze_layers=1, verbose=False)
    vit = classifier.backbone
    below = [vit.patch_embedding, vit.patch_positions, vit.class_token, vit.transformer_layers[0]]
    above = [vit.transformer_layers[1], vit.final_layer_norm]
    before = {layer.name: _weights(layer) for layer in below + above}
    _fit(classifier)
    assert [_changed(before[layer.name], _weights(layer)) for layer in below + above] == [False] * 4 + [True] * 2


def test_lora_trains_adapters_and_head_only():
    classifier = kp.recipes.image_classifier(_vit(), 2, lora_rank=2, verbose=False)
    rank, blocks = 2, 2
    # Query and value kernels are (hidden 8, heads 2, head_dim 4). Keras' EinsumDense LoRA adds
    # A (8, 2, rank) and B (rank, 4) and leaves the bias (2, 4) trainable; the head is 8 x 2 + 2.
    expected = blocks * 2 * (8 * 2 * rank + rank * 4 + 2 * 4) + 8 * 2 + 2
    assert classifier.trainable_parameters == expected
    assert sum(int(np.prod(v.shape)) for v in classifier.trainable_weights) == expected
    assert all(v.path.startswith("probabilities") or "lora" in v.path or v.path.endswith("bias")
               for v in classifier.trainable_weights)
    segmenter = kp.recipes.image_segmenter(_vit(), 2, lora_rank=2, verbose=False)
    assert all("lora" in v.path or "backbone" not in v.path for v in segmenter.trainable_weights)


@pytest.mark.parametrize("recipe", ["image_classifier", "image_segmenter"])
def test_precision_sets_the_backbone_policy(recipe):
    task = getattr(kp.recipes, recipe)(_vit(), 2, precision="mixed_bfloat16", verbose=False)
    assert task.backbone.dtype_policy.name == "mixed_bfloat16"
    assert task.backbone.transformer_layers[0].compute_dtype == "bfloat16"
    assert task.backbone.transformer_layers[0].variable_dtype == "float32"
    assert np.isfinite(task.predict(IMAGES[:2], verbose=0)).all()


def test_seed_and_checkpoint_dir_reach_the_segmenter_and_classifier(tmp_path):
    segmenter = kp.recipes.image_segmenter(_vit(), 2, seed=7, checkpoint_dir=tmp_path / "seg", verbose=False)
    classifier = kp.recipes.image_classifier(_vit(), 2, seed=7, checkpoint_dir=tmp_path / "clf", verbose=False)
    # Run options of the shared fit path (resumable fits are tested in tests/training/test_checkpoints.py).
    for task, folder in ((segmenter, "seg"), (classifier, "clf")):
        assert task.seed == 7 and str(task.checkpoint_dir) == str(tmp_path / folder)


def _bert():
    return kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                          max_sequence_length=8)


def _seq2seq():
    return kp.models.Seq2Seq.from_size("tiny", vocabulary_size=262, max_sequence_length=8, num_layers=1, hidden_dim=8,
                                       intermediate_dim=16)


def _bpe():
    return kp.data.bpe_tokenizer(*kp.data.train_bpe(["the cat sat on the mat"] * 4, vocabulary_size=262, verbose=False))


def _gpt():
    return kp.models.GPT(vocabulary_size=262, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                         max_sequence_length=8)


RECIPES = {
    "text_classifier": lambda d: kp.recipes.text_classifier(_bert(), 2, vocabulary=VOCAB, distribution=d),
    "text_regressor": lambda d: kp.recipes.text_regressor(_bert(), vocabulary=VOCAB, distribution=d),
    "token_classifier": lambda d: kp.recipes.token_classifier(_bert(), ["O"], vocabulary=VOCAB, distribution=d),
    "question_answerer": lambda d: kp.recipes.question_answerer(_bert(), vocabulary=VOCAB, distribution=d),
    "sentence_embedder": lambda d: kp.recipes.sentence_embedder(_bert(), vocabulary=VOCAB, distribution=d),
    "text_generator": lambda d: kp.recipes.text_generator(_gpt(), _bpe(), distribution=d),
    "translator": lambda d: kp.recipes.translator(_seq2seq(), _bpe(), sequence_length=8, distribution=d),
    "image_classifier": lambda d: kp.recipes.image_classifier(_vit(), 2, distribution=d),
    "image_segmenter": lambda d: kp.recipes.image_segmenter(_vit(), 2, distribution=d),
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_passes_distribution_to_its_task(recipe):
    # The recipes do not read `distribution` themselves: the task's constructor is what refuses it.
    with pytest.raises(ValueError, match="`distribution` must be one of .*received distribution='bogus'"):
        RECIPES[recipe]("bogus")


def test_the_image_head_starts_at_glorot_scale():
    # A from-scratch ViT learns through its head; BERT's 0.02 head cost MNIST 0.71 -> 0.40 (1 epoch).
    kernel = np.asarray(kp.recipes.image_classifier(_vit(), 10, verbose=False).output_dense.kernel)
    limit = np.sqrt(6 / (8 + 10))  # Glorot-uniform bound for 8 -> 10
    assert np.abs(kernel).max() <= limit and kernel.std() > 0.8 * limit / np.sqrt(3)
