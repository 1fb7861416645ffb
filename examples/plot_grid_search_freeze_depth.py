"""
Choosing how much to freeze with GridSearchCV
=============================================

:class:`~sktransfer.FineTunedClassifier` is an ordinary scikit-learn classifier, so
its ``freeze_depth`` (how many of the backbone's stages keep their pretrained weights)
and learning rate are chosen by cross-validation like any hyper-parameter. Frozen
stages cost less: their outputs are computed once and cached.

Small settings so that this runs in about a minute on a CPU: 400 digits, 2 folds of
200 training images, 3 epochs of batches of 16.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, train_test_split

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_digits_images

digits = load_digits_images()
X, _, y, _ = train_test_split(digits.images, digits.target, train_size=400, stratify=digits.target,
                              random_state=0)

model = FineTunedClassifier("efficientnet_lite0", input_size=32, max_epochs=3, batch_size=16, augment=None,
                            random_state=0)
search = GridSearchCV(model, {"freeze_depth": [0, 3, "all"], "lr": [3e-4, 1e-3]}, cv=2)
search.fit(X, y)
print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")

# %%
# The mean cross-validated accuracy of each pair, as a heatmap. ``"all"`` freezes the
# whole backbone and solves a linear probe on its features; its learning rate does not
# matter. With 36 training steps, the lower learning rate is the safer one, and
# training the whole network beats the probe: digits are far from ImageNet.
results = pd.DataFrame(search.cv_results_)
table = results.pivot_table(index="param_freeze_depth", columns="param_lr", values="mean_test_score",
                            sort=False)
fig, ax = plt.subplots(figsize=(5, 4))
image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis")
ax.set_xticks(range(table.shape[1]), [f"{lr:g}" for lr in table.columns])
ax.set_yticks(range(table.shape[0]), [str(d) for d in table.index])
ax.set_xlabel("learning rate")
ax.set_ylabel("freeze_depth")
for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < table.values.max() - 0.1
            else "black")
fig.colorbar(image, ax=ax, label="mean CV accuracy")
ax.set_title("GridSearchCV over freeze_depth and lr")
fig.tight_layout()
plt.show()
