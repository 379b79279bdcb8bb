"""One table of size names: tiny/mini/small/medium/base mean the same transformer in BERT, GPT and
ViT (Turc et al. 2019's BERT miniatures), and a name whose meaning changed warns once."""

import re
import warnings

import pytest

from keras_ptft.models import BERT_SIZES, GPT_SIZES, VIT_SIZES, GPT, ViT, Bert
from keras_ptft.models import sizes

CORE = ("num_layers", "hidden_dim", "num_heads", "intermediate_dim")
# Turc et al. (2019), Table 1 of the miniatures release: (layers, hidden); heads = hidden / 64.
MINIATURES = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512), "base": (12, 768)}


@pytest.mark.parametrize("name", list(MINIATURES))
def test_the_three_families_agree_on_every_name(name):
    layers, hidden = MINIATURES[name]
    want = dict(num_layers=layers, hidden_dim=hidden, num_heads=hidden // 64, intermediate_dim=4 * hidden)
    for table in (BERT_SIZES, GPT_SIZES, VIT_SIZES):
        assert {key: table[name][key] for key in CORE} == want, name


def test_the_families_add_only_their_modality_fields():
    assert all(set(BERT_SIZES[name]) == set(CORE) for name in MINIATURES)
    assert GPT_SIZES["base"]["max_sequence_length"] == 1024
    assert VIT_SIZES["tiny"]["image_shape"] == (32, 32, 3) and VIT_SIZES["tiny"]["patch_size"] == 4
    assert VIT_SIZES["base"]["image_shape"] == (224, 224, 3) and VIT_SIZES["base"]["patch_size"] == 16


def test_built_models_have_the_named_numbers():
    built = [Bert.from_size("tiny", vocabulary_size=20, max_sequence_length=8),
             GPT.from_size("tiny", vocabulary_size=20, max_sequence_length=8),
             ViT.from_size("tiny", image_shape=(8, 8, 3))]
    for model in built:
        assert tuple(getattr(model, key) for key in CORE) == (2, 128, 2, 512), type(model).__name__


@pytest.mark.parametrize("family, name, table, former", [
    ("GPT", "small", GPT_SIZES, "num_layers=6"),
    ("ViT", "tiny", VIT_SIZES, "num_layers=4, hidden_dim=192, num_heads=3"),
    ("ViT", "small", VIT_SIZES, "image_shape=(224, 224, 3)"),
])
def test_a_changed_name_warns_once_with_its_former_meaning(monkeypatch, family, name, table, former):
    monkeypatch.setattr(sizes, "_warned", set())
    with pytest.warns(FutureWarning, match=rf"{family} size '{name}' now means the shared .*{re.escape(former)}"):
        config = sizes.resolve_size(family, table, name, {})
    assert {key: config[key] for key in CORE} == {key: sizes.SIZES[name][key] for key in CORE}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sizes.resolve_size(family, table, name, {})  # once per process


@pytest.mark.parametrize("family, alias, table", [("GPT", "124M", GPT_SIZES), ("ViT", "base/16", VIT_SIZES)])
def test_old_aliases_warn_and_mean_base(monkeypatch, family, alias, table):
    monkeypatch.setattr(sizes, "_warned", set())
    with pytest.warns(FutureWarning, match=f"{family} size '{alias}' is deprecated; it is the shared size 'base'"):
        assert sizes.resolve_size(family, table, alias, {}) == sizes.resolve_size(family, table, "base", {})


def test_an_unchanged_name_does_not_warn(monkeypatch):
    monkeypatch.setattr(sizes, "_warned", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for family, table in (("Bert", BERT_SIZES), ("GPT", GPT_SIZES), ("ViT", VIT_SIZES)):
            sizes.resolve_size(family, table, "mini", {})
    with pytest.raises(ValueError, match="`size` must be one of"):
        sizes.resolve_size("Bert", BERT_SIZES, "huge", {})
