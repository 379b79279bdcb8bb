"""SQuAD JSON (v1.1 and v2.0): articles of paragraphs, each with a context and its questions."""

from __future__ import annotations

import gzip
import json
import os


def read_squad(path: str | os.PathLike) -> list[dict]:
    """Reads a SQuAD v1.1 or v2.0 JSON file into one dict per question.

    Args:
        path: str or `os.PathLike`. The `.json` file, or the same gzip'd (`.json.gz`).

    Returns:
        A list of dicts, in file order, with keys `"id"`, `"title"` (the article), `"question"`,
        `"context"`, `"answers"` (a list of `{"text": str, "start": int}`, character offsets
        into the context; empty for an unanswerable v2.0 question) and `"is_impossible"` (bool;
        False throughout a v1.1 file).

    Raises:
        ValueError: a file that is not SQuAD JSON, or a question without `question`/`context`
            or with an answer whose text is not found at its `answer_start` (the message names
            the question's index in the returned list and its id).

    Example:
    ```python
    examples = kp.data.read_squad("squad2_dev_subset/dev-v2.0-first5articles.json.gz")
    examples[0]["question"], examples[0]["answers"][0]  # 'In what country ...', {'text': 'France', 'start': 159}
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: no SQuAD file {path!r}.")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        try:
            document = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not JSON: {error}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise ValueError(f'{path!r} is not SQuAD JSON: expected an object with a "data" list of articles.')
    examples = []
    for article in document["data"]:
        title = article.get("title", "")
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            for qa in paragraph.get("qas", []):
                index = len(examples)
                where = f"question {index} (id {qa.get('id')!r}) of {path!r}"
                if not isinstance(context, str) or not context:
                    raise ValueError(f"`context` of {where} is missing or empty.")
                if not isinstance(qa.get("question"), str):
                    raise ValueError(f"`question` of {where} is missing.")
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else [
                    {"text": answer["text"], "start": int(answer["answer_start"])} for answer in qa.get("answers", [])
                ]
                for answer in answers:
                    if context[answer["start"]:answer["start"] + len(answer["text"])] != answer["text"]:
                        raise ValueError(
                            f"`answers` of {where}: {answer['text']!r} is not at character "
                            f"{answer['start']} of the context."
                        )
                examples.append({
                    "id": qa.get("id", str(index)),
                    "title": title,
                    "question": qa["question"],
                    "context": context,
                    "answers": answers,
                    "is_impossible": impossible,
                })
    return examples
