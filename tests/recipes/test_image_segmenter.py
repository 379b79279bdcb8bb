import keras
import numpy as np
import pytest

from keras_ptft.recipes import CrossEntropyDiceLoss, ImageSegmenter, MeanDice, image_segmenter
from tests import harness


def numpy_iou_and_dice(true, pred, num_classes):
    # Independent reference: per-class sets of pixels, classes absent from both left out.
    ious, dices = [], []
    for k in range(num_classes):
        t, p = true == k, pred == k
        if not (t.any() or p.any()):
            continue
        inter = np.logical_and(t, p).sum()
        ious.append(inter / np.logical_or(t, p).sum())
        dices.append(2 * inter / (t.sum() + p.sum()))
    return np.mean(ious), np.mean(dices)


def small_vit(pooling="token"):
    return harness.tiny_vit(pooling=pooling)


def test_iou_and_dice_match_numpy():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, (3, 8, 8))
    true[true == 3] = 0  # class 3 absent from the truth ...
    probs = rng.random((3, 8, 8, 4)).astype("float32")
    pred = probs.argmax(-1)
    iou, dice = numpy_iou_and_dice(true, pred, 4)
    dice_metric, iou_metric = MeanDice(4), keras.metrics.MeanIoU(4, sparse_y_pred=False)
    for i in range(3):  # accumulated over batches, as in evaluate()
        dice_metric.update_state(true[i:i + 1], probs[i:i + 1])
        iou_metric.update_state(true[i:i + 1], probs[i:i + 1])
    np.testing.assert_allclose(float(dice_metric.result()), dice, rtol=1e-5)
    np.testing.assert_allclose(float(iou_metric.result()), iou, rtol=1e-5)


def test_loss_is_cross_entropy_plus_soft_dice():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, (2, 4, 4))
    logits = rng.normal(size=(2, 4, 4, 3))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
    one_hot = np.eye(3)[true]
    cross_entropy = -np.mean(np.log(np.take_along_axis(probs, true[..., None], -1)))
    dice = 1 - np.mean((2 * (probs * one_hot).sum((0, 1, 2)) + 1) / (probs.sum((0, 1, 2)) + one_hot.sum((0, 1, 2)) + 1))
    loss = CrossEntropyDiceLoss(3, dice_weight=0.5)(true, probs)
    np.testing.assert_allclose(float(loss), cross_entropy + 0.5 * dice, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_segmenter_outputs_pixel_probabilities(pooling):
    segmenter = image_segmenter(small_vit(pooling), num_classes=3)
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("uint8")
    probs = segmenter.predict(images, verbose=0)
    assert probs.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    clone = ImageSegmenter.from_config(segmenter.get_config())
    assert clone.num_classes == 3


@pytest.mark.slow
def test_segmenter_learns_a_colour_mask():
    # Class = bright pixel; images are noise with bright squares: learnable within seconds.
    rng = np.random.default_rng(0)
    masks = np.zeros((64, 8, 8), "int32")
    for i in range(64):
        r, c = rng.integers(0, 5, 2)
        masks[i, r:r + 4, c:c + 4] = 1
    images = np.where(masks[..., None] == 1, 220, 30).astype("uint8") + rng.integers(0, 20, (64, 8, 8, 3)).astype("uint8")
    segmenter = image_segmenter(small_vit(), num_classes=2, learning_rate=1e-2)
    before = segmenter.evaluate(images, masks, verbose=0, return_dict=True)
    history = segmenter.fit(images, masks, batch_size=16, epochs=12, verbose=0)
    after = segmenter.evaluate(images, masks, verbose=0, return_dict=True)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after["mean_iou"] > max(0.5, before["mean_iou"] + 0.15), (before, after)
    # Reported figures agree with the NumPy reference on the model's own predictions.
    iou, dice = numpy_iou_and_dice(masks, segmenter.predict(images, verbose=0).argmax(-1), 2)
    np.testing.assert_allclose(after["mean_iou"], iou, rtol=1e-4)
    np.testing.assert_allclose(after["mean_dice"], dice, rtol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_classes"):
        image_segmenter(small_vit(), num_classes=1)
    segmenter = image_segmenter(small_vit(), num_classes=3)
    images = np.zeros((2, 8, 8, 3), "uint8")
    with pytest.raises(ValueError, match=r"masks must have shape \(2, 8, 8\)"):
        segmenter.fit(images, np.zeros((2, 4, 4), "int32"), verbose=0)
    with pytest.raises(ValueError, match="class ids"):
        segmenter.fit(images, np.full((2, 8, 8), 3), verbose=0)
    with pytest.raises(ValueError, match="channel"):
        segmenter.predict(np.zeros((2, 8, 8, 1), "uint8"))
