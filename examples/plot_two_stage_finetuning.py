"""
Two-stage fine-tuning, and watching training
============================================

A common recipe trains the new head alone first, then the whole network at a lower
learning rate. :class:`~sktransfer.FineTunedClassifier` does it with
``head_epochs``: the head starts from the solved linear probe, trains alone for
``head_epochs`` epochs, then everything trains at ``finetune_lr_scale`` times the
learning rate. Passing ``X_val`` and ``y_val`` to ``fit`` scores a validation set
after every epoch, and :class:`~sktransfer.display.TrainingCurveDisplay` draws it.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_digits_images
from sktransfer.display import TrainingCurveDisplay

digits = load_digits_images()
X_train, X_val, y_train, y_val = train_test_split(
    digits.images, digits.target, train_size=800, test_size=400, stratify=digits.target, random_state=0)

common = dict(input_size=32, max_epochs=4, augment=None, random_state=0)
recipes = {
    "one stage (the default)": FineTunedClassifier("efficientnet_lite0", **common),
    "two stages: 1 head epoch, then all at 0.1x": FineTunedClassifier(
        "efficientnet_lite0", head_epochs=1, finetune_lr_scale=0.1, **common),
}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for ax, (name, model) in zip(axes, recipes.items()):
    model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    print(f"{name:45} validation accuracy {model.score(X_val, y_val):.3f}")
    TrainingCurveDisplay.from_estimator(model, ax=ax, name=name)
fig.tight_layout()
plt.show()

# %%
# On these digits, one stage at the full learning rate adapts the ImageNet features
# faster; the second stage's lower rate makes the two-stage recipe the cautious one,
# which pays off when the new task is close to the pretrained one and data are few.
# ``benchmarks/README.md`` has both recipes on digits, Fashion-MNIST and text.
