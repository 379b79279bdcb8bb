import dataclasses

from keras_ptft import cli
from keras_ptft.quickstart import MODELS, load


def test_vit_quickstart_is_registered_and_reachable_from_the_cli(monkeypatch, tmp_path):
    assert "vit" in MODELS
    module = load("vit")
    fast = module.Settings.fast()
    assert fast.pretrain_images < module.Settings().pretrain_images
    seen = {}

    def fake_run(settings, output_dir, seed):
        seen.update(settings=settings, output_dir=output_dir, seed=seed)
        return {}

    monkeypatch.setattr(module, "run", fake_run)
    assert cli.main(["quickstart", "--model", "vit", "--fast", "--output-dir", str(tmp_path), "--seed", "3"]) == 0
    assert seen == {"settings": dataclasses.replace(fast), "output_dir": str(tmp_path), "seed": 3}
