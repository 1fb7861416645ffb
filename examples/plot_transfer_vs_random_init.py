"""
Transfer learning against training from scratch
===============================================

What do pretrained weights buy? The same network, the same data and the same
training, once from ImageNet weights (``weights="DEFAULT"``) and once from a random
initialization (``weights=None``), with the validation accuracy after every epoch.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_digits_images

digits = load_digits_images()
X_train, X_val, y_train, y_val = train_test_split(
    digits.images, digits.target, train_size=600, test_size=400, stratify=digits.target, random_state=0)

fig, ax = plt.subplots(figsize=(6, 4))
for weights, label in (("DEFAULT", "ImageNet weights"), (None, "random initialization")):
    model = FineTunedClassifier("efficientnet_lite0", weights=weights, input_size=32, max_epochs=4,
                                augment=None, random_state=0)
    model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    accuracy = model.net_.history[:, "valid_acc"]
    ax.plot(range(1, len(accuracy) + 1), accuracy, "o-", label=f"{label}: {accuracy[-1]:.3f}")
    print(f"{label:24} validation accuracy per epoch: {[round(a, 3) for a in accuracy]}")
ax.set_xticks(range(1, 5))
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy")
ax.set_ylim(0, 1)
ax.legend(title="EfficientNet-Lite0 from")
ax.set_title("600 training digits, 4 epochs")
fig.tight_layout()
plt.show()

# %%
# The pretrained network is far ahead after the first epoch and stays ahead: edges and
# strokes learnt from a million photographs carry over to digits, and a random network
# has to learn them from 600 images.
