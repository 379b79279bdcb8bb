"""ViT quickstart: MAE pretraining → few-label fine-tuning vs scratch → SavedModel export → parity.

Runs on procedurally generated shape images (`keras_ptft.data.generate_shapes`): no download. The
pretraining is `keras_ptft.pipelines.pretrain_vit`; this module keeps the demo.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras

from keras_ptft.quickstart import check, phase, start


@dataclasses.dataclass(frozen=True)
class Settings:
    """The budget of one quickstart run; `fast()` is the small version."""

    size: str = "tiny"
    image_size: int = 32
    num_layers: int | None = 2
    hidden_dim: int | None = 96
    pretrain_images: int = 4000
    labelled_images: int = 400
    test_images: int = 800
    pretrain_epochs: int = 10
    finetune_epochs: int = 10
    batch_size: int = 64
    pretrain_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-3

    @classmethod
    def fast(cls) -> "Settings":
        return cls(image_size=16, num_layers=1, hidden_dim=32, pretrain_images=512, labelled_images=128,
                   test_images=128, pretrain_epochs=2, finetune_epochs=2)


def run(settings: Settings, output_dir: str = "saved_models", seed: int = 0) -> dict:
    """Runs every phase and returns the summary figures; raises `CheckFailed` on a failed check."""
    import keras_ptft as kp
    from keras_ptft.pipelines import pretrain_vit

    started = time.perf_counter()
    results = start(settings, seed)
    overrides = {"image_shape": (settings.image_size, settings.image_size, 3)}
    if settings.num_layers:
        overrides["num_layers"] = settings.num_layers
    if settings.hidden_dim:
        overrides.update(hidden_dim=settings.hidden_dim, intermediate_dim=4 * settings.hidden_dim,
                         num_heads=max(1, settings.hidden_dim // 32))

    phase("1/5 Generating the shapes dataset (circle / square / triangle / cross)")
    unlabelled = kp.data.generate_shapes(settings.pretrain_images, settings.image_size, seed=seed)
    labelled = kp.data.generate_shapes(settings.labelled_images, settings.image_size, seed=seed + 1)
    test = kp.data.generate_shapes(settings.test_images, settings.image_size, seed=seed + 2)
    print(f"{len(unlabelled.images)} unlabelled, {len(labelled.images)} labelled, {len(test.images)} test images")

    phase("2/5 MAE pretraining (75% of patches masked)")
    pretrained_path = os.path.join(output_dir, "vit_mae")
    pretrained = pretrain_vit(unlabelled.images, pretrained_path, size=settings.size,
                              epochs=settings.pretrain_epochs, batch_size=settings.batch_size,
                              learning_rate=settings.pretrain_learning_rate, seed=seed, **overrides)
    mae = pretrained.task
    results["mae_loss_first"], results["mae_loss_last"] = pretrained.metrics["loss"][0], pretrained.metrics["loss"][-1]
    os.makedirs(output_dir, exist_ok=True)
    png = kp.tasks.save_reconstruction_grid(mae, test.images[:8], os.path.join(output_dir, "vit_mae_reconstructions.png"))
    print(f"pretrained backbone saved to {pretrained_path}/; reconstructions: {png}")

    phase(f"3/5 Fine-tuning on {len(labelled.images)} labels: MAE-pretrained vs from scratch")
    classifiers = {}
    for name, source in (("pretrained", pretrained_path),
                         ("scratch", kp.models.ViT.from_size(settings.size, pooling="mean", **overrides))):
        print(f"--- {name}")
        keras.utils.set_random_seed(seed)
        classifier = kp.recipes.image_classifier(source, len(labelled.class_names), label_names=labelled.class_names,
                                                 learning_rate=settings.finetune_learning_rate, seed=seed)
        classifier.fit(labelled.images, labelled.labels, batch_size=settings.batch_size,
                       epochs=settings.finetune_epochs, verbose=2)
        results[f"{name}_accuracy"] = classifier.evaluate(test.images, test.labels, verbose=0,
                                                          return_dict=True)["accuracy"]
        classifiers[name] = classifier

    phase("4/5 Exporting the pretrained classifier as a SavedModel taking uint8 images")
    export_dir = kp.export.export(classifiers["pretrained"], os.path.join(output_dir, "vit_shapes"),
                                  formats=["saved_model"], overwrite=True)
    saved_model = os.path.join(export_dir, "1")
    results["saved_model"] = saved_model
    results["export_max_abs_diff"] = kp.export.image_saved_model_parity(classifiers["pretrained"], saved_model,
                                                                        test.images[:32])
    print(f"SavedModel: {saved_model}")

    phase("5/5 Summary")
    results["seconds"] = time.perf_counter() - started
    for name, value in (("MAE loss (first → last epoch)", f"{results['mae_loss_first']:.3f} → {results['mae_loss_last']:.3f}"),
                        ("test accuracy, MAE-pretrained", f"{results['pretrained_accuracy']:.3f}"),
                        ("test accuracy, from scratch", f"{results['scratch_accuracy']:.3f}"),
                        ("SavedModel vs Keras max |Δp|", f"{results['export_max_abs_diff']:.2e}"),
                        ("wall-clock seconds", f"{results['seconds']:.0f}")):
        print(f"{name:<32}  {value}")
    failures = []
    if not results["mae_loss_last"] < results["mae_loss_first"]:
        failures.append("the MAE reconstruction loss did not decrease")
    if not results["export_max_abs_diff"] <= 1e-4:
        failures.append(f"the SavedModel differs from the Keras model by {results['export_max_abs_diff']:.2e}")
    check(failures)
    return results
