"""One long-lived process per Keras backend runs every JAX / PyTorch check of a test session.

A process has one Keras backend, so a check on JAX or PyTorch runs outside the pytest process.
Starting that process (importing TensorFlow, tf-text, keras-hub and the backend) costs 10-20 s;
paying it once per check file made the backend subprocesses the largest share of the suite. Here
each pytest process (each xdist worker) starts at most one server per backend, on first use, and
sends it every check through `tests/conftest.py: run_on_backend`.

A check is a plain function in a tests module, `check(*args) -> dict`; the dict may hold
JSON values and NumPy arrays. The protocol is one JSON line per request on stdin and one line
(prefixed `RESULT_PREFIX`) per answer on the process's original stdout; everything else the check
or the libraries print goes to the server's log file, whose tail a failing test shows.

    KERAS_BACKEND=jax python -m tests.backend_server   # serves until stdin closes

A check that needs its own process environment (a device count in XLA_FLAGS) gets a fresh
server for its one request (`run_on_backend(..., fresh_process=True, env=...)`).
"""

import gc
import importlib
import json
import os
import sys
import traceback

RESULT_PREFIX = "@@BACKEND_RESULT "

# XLA's CPU compiler spends about half of every compile in LLVM's optimisation passes. The checks'
# programs are tiny and run in milliseconds either way, so their processes compile at -O0: a
# 2-layer BERT's train step 3.3 s -> 1.5 s, the JAX distribution check 168 s -> 93 s (measured).
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"


def fast_compile_env(env: dict | None = None) -> dict:
    """`os.environ` updated with `env`, plus `FAST_COMPILE_FLAG` in XLA_FLAGS (kept with any
    flag `env` or the environment already sets, such as a device count)."""
    env = {**os.environ, **(env or {})}
    flags = env.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        env["XLA_FLAGS"] = f"{flags} {FAST_COMPILE_FLAG}".strip()
    return env


def resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _reset() -> None:
    """Each check starts as it would in a fresh process: no models, float32, seeded."""
    import keras

    keras.backend.clear_session()
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)


def run_request(request: dict) -> dict:
    import numpy as np

    try:
        _reset()
        result = resolve(request["target"])(*request.get("args", []))
        result = {} if result is None else dict(result)
        arrays = {k: v for k, v in result.items() if isinstance(v, np.ndarray)}
        if arrays:
            np.savez(request["arrays_path"], **arrays)
        return {"ok": True, "result": {k: v for k, v in result.items() if k not in arrays},
                "arrays": sorted(arrays)}
    except BaseException as error:  # noqa: BLE001 -- reported to the test, which fails with it
        return {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def serve() -> None:
    # The protocol owns the original stdout; anything else written to fd 1 (prints, native logs)
    # lands in the log (fd 2) so it can never corrupt an answer.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import keras

    import keras_ptft  # noqa: F401  (registers the serializable classes once)

    # Imports leave ~500k long-lived objects; frozen, later collections skip them.
    gc.collect()
    gc.freeze()

    channel.write(RESULT_PREFIX + json.dumps({"ok": True, "ready": keras.config.backend()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        print(f"=== {request['target']} {request.get('args', [])}", file=sys.stderr, flush=True)
        answer = run_request(request)
        sys.stderr.flush()
        channel.write(RESULT_PREFIX + json.dumps(answer) + "\n")


class BackendServer:
    """The pytest side of one server process: starts it, sends checks, reports failures."""

    def __init__(self, backend: str, log_path: str, env: dict | None = None):
        import queue
        import subprocess
        import threading

        repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        pythonpath = os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")]))
        self.backend, self.log_path = backend, log_path
        self._log = open(log_path, "a")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.backend_server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True,
            env=fast_compile_env({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": pythonpath,
                                  **(env or {})}))
        self._answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._ready = False

    def _read(self) -> None:
        for line in self._process.stdout:
            if line.startswith(RESULT_PREFIX):
                self._answers.put(json.loads(line[len(RESULT_PREFIX):]))
        self._answers.put(None)  # the process ended

    def alive(self) -> bool:
        return self._process.poll() is None

    def _log_tail(self, since: int) -> str:
        self._log.flush()
        with open(self.log_path, errors="replace") as handle:
            handle.seek(since)
            return handle.read()[-4000:]

    def _answer(self, timeout: float, since: int, what: str) -> dict:
        import queue

        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close(kill=True)
            raise AssertionError(f"{self.backend}: {what} gave no answer in {timeout:.0f} s\n"
                                 f"{self._log_tail(since)}") from None
        if answer is None:
            self.close(kill=True)
            raise AssertionError(f"{self.backend}: the backend process ended during {what} (exit code "
                                 f"{self._process.returncode})\n{self._log_tail(since)}")
        return answer

    def run(self, target: str, args: list, arrays_path: str, timeout: float) -> dict:
        since = os.path.getsize(self.log_path)
        if not self._ready:
            self._answer(timeout, since, "start-up")
            self._ready = True
        request = {"target": target, "args": args, "arrays_path": arrays_path}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = self._answer(timeout, since, target)
        if not answer["ok"]:
            raise AssertionError(f"{self.backend}: {target} failed: {answer['error']}\n{answer['traceback']}"
                                 f"\n--- backend log ---\n{self._log_tail(since)}")
        result = answer["result"]
        if answer["arrays"]:
            import numpy as np

            with np.load(arrays_path) as arrays:
                result.update({name: arrays[name] for name in answer["arrays"]})
        return result

    def close(self, kill: bool = False) -> None:
        import subprocess

        if self.alive():
            if kill:
                self._process.kill()
            else:
                try:
                    self._process.stdin.close()
                    self._process.wait(timeout=60)
                except (OSError, subprocess.TimeoutExpired):
                    self._process.kill()
        self._process.wait()
        self._log.close()


if __name__ == "__main__":
    serve()
