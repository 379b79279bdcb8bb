"""Texts and helpers shared by the export tests."""

import shutil

import numpy as np

from keras_ptft.export.base import load_manifest

# English, accented Latin and Chinese sentences: the tokenizer and parity test set.
MULTILINGUAL = [
    "The film was wonderful, moving and funny!",
    "A dull, tedious plot; the actors looked bored.",
    "It's not bad... actually it's (quite) good? 10/10 — I'd watch it again.",
    "Un café crème, s'il vous plaît: très naïf, déjà vu.",
    "Über-schön! Ärger, Öl und Straße in Zürich.",
    "El niño comió jalapeños en la mañana; ¿qué pasó?",
    "Crème brûlée à la française, façade élégante.",
    "这部电影很好看，演员的表演非常自然。",
    "我不喜欢这个酒店, the room was dirty and 服务很差!",
    "酒店位置很好，早餐一般。Breakfast was OK.",
    "MIXED case WoRdS and UPPER CASE SHOUTING",
    "tabs\tand\nnewlines  and   spaces",
    "numbers 3.14 and 1,000,000 and 42nd street",
    "",
]
POSITIVE = ["wonderful", "good", "great", "很好", "très bien"]
NEGATIVE = ["dull", "bad", "boring", "很差", "pas bien"]


def toy_sentiment(n=64, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        filler = " ".join(rng.choice(["the", "film", "was", "酒店", "café"], size=3))
        texts.append(f"{filler} {word} {filler}")
        labels.append(label)
    return texts, np.array(labels, "int32")


def reference(model, texts):
    """The Keras model's probabilities, computed directly (fast: no tf.data pipeline)."""
    return np.asarray(model(model.preprocessor(texts), training=False))


class serving:
    """`with serving(predictor) as server:` a `Server` on a free loopback port, closed afterwards."""

    def __init__(self, predictor, **options):
        from keras_ptft.export.serve import Server

        self.server = Server(predictor, host="127.0.0.1", port=0, **options)

    def __enter__(self):
        import threading

        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.server

    def __exit__(self, *exc):
        self.server.close()
        self.thread.join(timeout=5)


def post(server, body, path="/predict", method="POST"):
    """(status, JSON answer) of one request to a running `Server`."""
    import http.client
    import json

    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=data)
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, answer


def concurrently(function, arguments):
    """`function(argument)` for each argument, each on its own thread; the results in order."""
    import threading

    results = [None] * len(arguments)

    def call(i):
        results[i] = function(arguments[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(arguments))]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    return results


def png_base64(image) -> str:
    """A uint8 `(height, width, channels)` image as the base64 PNG a serve request carries."""
    import base64

    import tensorflow as tf

    return base64.b64encode(tf.io.encode_png(image).numpy()).decode()


# A word-for-word toy "translation" for the translator exports.
LEXICON = {"red": "红", "blue": "蓝", "cat": "猫", "dog": "狗", "sun": "太阳", "moon": "月亮"}
TRANSLATOR_SOURCES = ["red cat", "blue dog moon", "sun", "moon moon red", "a cat I never saw", "狗"]


def toy_pairs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    sources = [" ".join(rng.choice(list(LEXICON), rng.integers(1, 4))) for _ in range(n)]
    return sources, ["".join(LEXICON[w] for w in s.split()) + "。" for s in sources]


# Folder helpers of the bad-input sweeps: `ctx` holds `exported` (a folder) and `tmp` (a scratch path).
def copy_of(ctx, name="copy"):
    target = ctx.tmp / name
    if not target.exists():
        shutil.copytree(ctx.exported, target)
    return target


def truncate(ctx, relative):
    folder = copy_of(ctx)
    data = (folder / relative).read_bytes()
    (folder / relative).write_bytes(data[: len(data) // 2])
    return folder


def manifest_of(ctx):
    return load_manifest(ctx.exported)
