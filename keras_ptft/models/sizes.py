"""One table of size names for every backbone family: a name means the same transformer in BERT,
GPT and ViT.

The names and numbers are the BERT miniatures of Turc et al. (2019, "Well-Read Students Learn
Better"), whose Base is BERT-base, GPT-2 small and ViT-B: 64-wide heads, feed-forward 4 x hidden.

| name | layers | hidden | heads | intermediate |
|---|---|---|---|---|
| tiny | 2 | 128 | 2 | 512 |
| mini | 4 | 256 | 4 | 1024 |
| small | 4 | 512 | 8 | 2048 |
| medium | 8 | 512 | 8 | 2048 |
| base | 12 | 768 | 12 | 3072 |

A family adds only the fields of its modality (`family_sizes`): ViT its input (32x32x3 images in
patches of 4 up to medium, CPU-sized like CIFAR-10; 224x224x3 in patches of 16 for base, ViT-B/16),
GPT its context (1024 tokens for base, GPT-2 small's).

Names whose meaning changed when the families were aligned still build the new model but warn once
(a `FutureWarning`) with the numbers to pass to get the old one; the old aliases `"124M"` (GPT) and
`"base/16"` (ViT) warn and mean `"base"`.
"""

from __future__ import annotations

import warnings

SIZES: dict[str, dict] = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "small": dict(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "medium": dict(num_layers=8, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
}

# (family, name) -> the constructor arguments the name meant before the tables were aligned.
FORMER_MEANINGS: dict[tuple[str, str], dict] = {
    ("GPT", "small"): dict(num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    ("ViT", "tiny"): dict(num_layers=4, hidden_dim=192, num_heads=3, intermediate_dim=768),
    ("ViT", "small"): dict(image_shape=(224, 224, 3), patch_size=16, num_layers=12, hidden_dim=384, num_heads=6,
                           intermediate_dim=1536),
}
# (family, old alias) -> the shared name it now stands for.
ALIASES: dict[tuple[str, str], str] = {("GPT", "124M"): "base", ("ViT", "base/16"): "base"}
_warned: set = set()


def family_sizes(family: str, extra: dict[str, dict] | None = None) -> dict[str, dict]:
    """The family's table: `SIZES` plus its own fields per name (`extra`), plus its old aliases.

    Example:
    ```python
    family_sizes("GPT", {"base": {"max_sequence_length": 1024}})["base"]["max_sequence_length"]  # 1024
    ```
    """
    extra = extra or {}
    table = {name: {**config, **extra.get(name, {})} for name, config in SIZES.items()}
    for (owner, alias), name in ALIASES.items():
        if owner == family:
            table[alias] = table[name]
    return table


def resolve_size(family: str, sizes: dict[str, dict], size: str, overrides: dict) -> dict:
    """The constructor arguments of a named size of `family`, with `overrides` applied on top.

    Warns once per process when `size` is an old alias or a name whose meaning changed for this
    family, naming the arguments that rebuild the former model.

    Example:
    ```python
    resolve_size("Bert", family_sizes("Bert"), "mini", {"num_layers": 2})["hidden_dim"]  # 256
    ```
    """
    if size not in sizes:
        raise ValueError(f"`size` must be one of {list(sizes)}, received size={size!r}.")
    key = (family, size)
    if key not in _warned and (key in ALIASES or key in FORMER_MEANINGS):
        _warned.add(key)
        if key in ALIASES:
            message = f"{family} size {size!r} is deprecated; it is the shared size {ALIASES[key]!r}: use that name."
        else:
            former = ", ".join(f"{k}={v!r}" for k, v in FORMER_MEANINGS[key].items())
            message = (
                f"{family} size {size!r} now means the shared {size!r} of keras_ptft.models.sizes "
                f"({_describe(SIZES[size])}), the same in BERT, GPT and ViT. Its former meaning is "
                f"{family}.from_size({size!r}, {former})."
            )
        warnings.warn(message, FutureWarning, stacklevel=3)
    config = {**sizes[size], **overrides}
    config.setdefault("intermediate_dim", 4 * config["hidden_dim"])  # as in BERT, GPT-2 and ViT
    return config


def _describe(config: dict) -> str:
    return "L{num_layers}/H{hidden_dim}/A{num_heads}/I{intermediate_dim}".format(**config)
