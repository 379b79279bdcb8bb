"""Argument checks shared by every backbone (the named sizes are in `keras_ptft.models.sizes`)."""

from __future__ import annotations


def check_transformer_config(**values) -> None:
    """Raises a `ValueError` naming the first invalid transformer argument."""
    for name in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                 "max_sequence_length"):
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")
    if values["hidden_dim"] % values["num_heads"]:
        raise ValueError(
            f"`hidden_dim` must be divisible by `num_heads`, received hidden_dim="
            f"{values['hidden_dim']} and num_heads={values['num_heads']}."
        )
    if not 0.0 <= values["dropout"] < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), received dropout={values['dropout']!r}.")
