"""A few training steps and a prediction of TokenClassifier and QuestionAnswerer on the Keras
backend running it: JAX and PyTorch, from tests/tasks/test_token_classifier.py through
`run_on_backend`. Returns the losses and predictions.
"""


def main() -> dict:
    import keras

    import keras_ptft as kp

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alice", "met", "bob", "in", "paris", "who", "?", "."]
    bert = kp.models.Bert(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                          max_sequence_length=16)
    tagger = kp.recipes.token_classifier(bert, ["O", "B-PER", "B-LOC"], vocabulary=vocab, sequence_length=16)
    history = tagger.fit([["Alice", "met", "Bob", "in", "Paris"]] * 4, [["B-PER", "O", "B-PER", "O", "B-LOC"]] * 4,
                         batch_size=2, epochs=1, verbose=0)
    entities = tagger.predict(["Alice met Bob in Paris."])[0]
    qa = kp.recipes.question_answerer(bert, vocabulary=vocab, sequence_length=16, doc_stride=2)
    context = "Alice met Bob in Paris. Bob met Alice."
    qa_history = qa.fit([("who met bob?", context)] * 4, [{"text": "Alice", "start": 0}] * 4, batch_size=2,
                        epochs=1, verbose=0)
    answer = qa.predict([("who met bob?", context)])[0]
    report = {
        "backend": keras.config.backend(),
        "ner_loss": history.history["loss"][-1],
        "ner_entity_keys": sorted(entities[0]) if entities else ["end", "label", "start", "text"],
        "qa_loss": qa_history.history["loss"][-1],
        "qa_answer": answer,
        "qa_context": context,
    }
    return report
