"""Quiet start-up for the `keras-ptft` command: TensorFlow's native log lines hidden unless --verbose.

Importing TensorFlow prints about six INFO lines from C++ (oneDNN, CUDA drivers, CPU features)
before absl's logging is initialised, so no environment variable silences them —
`TF_CPP_MIN_LOG_LEVEL=3` included. The command hides them by pointing file descriptor 2 at
`os.devnull` while TensorFlow is imported. The package imports TensorFlow when it is imported,
so this runs from `keras_ptft/__init__.py`, first, and only when the process is the command
(`keras-ptft ...` or `python -m keras_ptft.cli ...`) without `--verbose`/`--debug`; importing the
library from Python changes nothing.
"""

from __future__ import annotations

import os
import sys

VERBOSE_FLAGS = ("--verbose", "--debug")


def is_quiet_command() -> bool:
    """True when this process is the `keras-ptft` command run without `--verbose`/`--debug`."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    as_module = any(argv[i : i + 2] == ["-m", "keras_ptft.cli"] for i in range(len(argv) - 1))
    return (name == "keras-ptft" or as_module) and not any(flag in argv for flag in VERBOSE_FLAGS)


def quiet_tensorflow_startup() -> None:
    """Imports TensorFlow with stderr's file descriptor pointed at `os.devnull`, then restores it.

    Also hides TensorFlow's later C++ log lines (`TF_CPP_MIN_LOG_LEVEL=3`, unless already set);
    failures still surface as Python exceptions. Does nothing when TensorFlow is already imported.

    Example:
    ```python
    from keras_ptft.startup import is_quiet_command, quiet_tensorflow_startup
    if is_quiet_command():
        quiet_tensorflow_startup()
    ```
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (e.g. a closed descriptor): nothing to hide
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
