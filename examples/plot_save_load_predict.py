"""
Saving, loading and predicting
==============================

A fitted estimator is saved with :func:`sktransfer.save` as one safetensors file
(weights as tensors, the rest as JSON: nothing in it runs code when loaded) and read
back with :func:`sktransfer.load`, on a CPU even when it was fitted on a GPU.
Pipelines holding our estimators save with skops
(``trusted=sktransfer.SKOPS_TRUSTED_TYPES``); see the user guide's *Saving models*.
"""

# %%
# A quick model: ``freeze_depth="all"`` keeps the whole backbone frozen and solves the
# linear probe on its features, which takes seconds.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

import sktransfer
from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_digits_images

digits = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    digits.images, digits.target, test_size=450, stratify=digits.target, random_state=0)
model = FineTunedClassifier("efficientnet_lite0", freeze_depth="all", input_size=32).fit(X_train, y_train)

path = Path(tempfile.mkdtemp()) / "digits.safetensors"
sktransfer.save(model, path)
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")

# %%
# Loaded, the model predicts exactly as the one that was saved.
loaded = sktransfer.load(path)
assert np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
print(f"test accuracy of the loaded model: {loaded.score(X_test, y_test):.3f}")

# %%
# Predictions with their probabilities, and the confusion matrix from scikit-learn's
# own display.
proba = loaded.predict_proba(X_test[:8])
fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
for ax, image, p in zip(axes, X_test[:8], proba):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(f"{loaded.classes_[p.argmax()]} ({p.max():.0%})", fontsize=9)
    ax.axis("off")
ConfusionMatrixDisplay.from_estimator(loaded, X_test, y_test, colorbar=False)
plt.show()
