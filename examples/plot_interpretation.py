"""
Looking at the mistakes: misclassified images and Grad-CAM maps
================================================================

Accuracy and a confusion matrix count the mistakes; looking at them says more. A
confident mistake points at a mislabelled image, two classes the model confuses, or
a shortcut it learnt. :class:`~sktransfer.display.MisclassifiedDisplay` shows the
most confidently wrong images with their labels (fastai's ``plot_top_losses``), and
:class:`~sktransfer.display.SaliencyDisplay` draws Grad-CAM maps over them: where in
the image the network found its evidence for a class.
"""

# %%
# Fine-tune on digits
# -------------------
# EfficientNet-Lite0 with its ImageNet weights, at 32 pixels; the first four stages
# are frozen, so their output is computed once and the three epochs train only the
# rest (about half a minute on two CPU cores).
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_digits_images
from sktransfer.display import MisclassifiedDisplay, SaliencyDisplay, plot_confusion_matrix

digits = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    digits.images, digits.target, train_size=600, test_size=300, stratify=digits.target, random_state=0)
model = FineTunedClassifier("efficientnet_lite0", input_size=32, freeze_depth=4, max_epochs=3, augment=None,
                            random_state=0).fit(X_train, y_train)
proba = model.predict_proba(X_test)  # one pass gives the predictions and their probabilities
y_pred = model.classes_[proba.argmax(axis=1)]
plot_confusion_matrix(y_test, y_pred)
plt.show()

# %%
# The most confident mistakes
# ---------------------------
# Ranked by the probability the model gave its wrong answer.
mistakes = MisclassifiedDisplay.from_predictions(y_test, proba, X_test, classes=model.classes_)
plt.show()

# %%
# Where the evidence was
# ----------------------
# Grad-CAM weighs a stage's feature maps by the gradient of the class's score. At 32
# pixels the last stages' maps are 2x2 (1x1 for the very last); ``stage="blocks2"``
# (4x4, a stride of 8) is finer. Top row: the evidence for the predicted class; bottom
# row, with ``target=``: the evidence for the true one. The maps are drawn over the
# images as the network saw them (resized to 32 pixels).
shown = mistakes.indices[:5]
fig, axes = plt.subplots(2, len(shown), figsize=(2.2 * len(shown), 5.4))
SaliencyDisplay.from_estimator(model, X_test[shown], y_test[shown], stage="blocks2", axes=axes[0])
SaliencyDisplay.from_estimator(model, X_test[shown], y_test[shown], target=y_test[shown], stage="blocks2",
                               axes=axes[1])
fig.suptitle("Grad-CAM of stage blocks2: predicted class (top), true class (bottom)")
fig.tight_layout()
plt.show()

# %%
# A map that is blank says the stage holds no positive evidence for that class. The
# same displays serve any fitted image classifier: ``from_estimator`` takes any input
# the estimator takes (arrays, PIL images, file paths), and the network is left
# exactly as it was.
