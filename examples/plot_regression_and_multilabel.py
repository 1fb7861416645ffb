"""
Regression and multi-label targets
==================================

The same fine-tuning, for other targets. :class:`~sktransfer.FineTunedRegressor`
learns a continuous value: here the angle by which each of scikit-learn's digits was
rotated. :class:`~sktransfer.FineTunedClassifier` learns several independent labels at
once from a 0/1 indicator matrix: here "even" and "greater than four". EfficientNet-Lite0
with its ImageNet weights, at 32 px, on the CPU.
"""

# %%
# Rotate each digit by a known angle, between -40 and 40 degrees.
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.linear_model import RidgeCV
from sklearn.metrics import f1_score, hamming_loss, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

from sktransfer import FineTunedClassifier, FineTunedRegressor
from sktransfer.datasets import load_digits_images

digits = load_digits_images()
rng = np.random.default_rng(0)
angles = rng.uniform(-40, 40, len(digits.images))
big = [Image.fromarray(image).resize((32, 32), Image.BILINEAR) for image in digits.images]
rotated = np.stack([np.asarray(image.rotate(angle, resample=Image.BILINEAR)) for image, angle in zip(big, angles)])
X_train, X_test, a_train, a_test, d_train, d_test = train_test_split(
    rotated, angles, digits.target, test_size=0.25, random_state=0)

# %%
# A ridge regression on the raw pixels, the ridge probe on frozen ImageNet features
# (``freeze_depth="all"``, solved in closed form) and two epochs of fine-tuning. No flips:
# a mirrored digit turns the other way.
results = {}
raw = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(X_train.reshape(len(X_train), -1), a_train)
results["raw pixels + RidgeCV"] = raw.predict(X_test.reshape(len(X_test), -1))
params = {"input_size": 32, "augment": None, "random_state": 0}
probe = FineTunedRegressor("efficientnet_lite0", freeze_depth="all", **params).fit(X_train, a_train)
results["frozen features, ridge probe"] = probe.predict(X_test)
tuned = FineTunedRegressor("efficientnet_lite0", max_epochs=2, **params).fit(X_train, a_train)
results["fine-tuned, 2 epochs"] = tuned.predict(X_test)
for name, predicted in results.items():
    print(f"{name:32s} R^2 {r2_score(a_test, predicted):.3f}   "
          f"mean error {mean_absolute_error(a_test, predicted):.1f} degrees")

# %%
# Predicted against true angles on the test digits.
fig, ax = plt.subplots(figsize=(5, 5))
for name, predicted in results.items():
    ax.scatter(a_test, predicted, s=6, label=name)
ax.plot([-40, 40], [-40, 40], color="black", linewidth=1)
ax.set(xlabel="true angle", ylabel="predicted angle", title="Rotation angle of digits")
ax.legend()
plt.show()

# %%
# Two labels per digit, learned together: one sigmoid output each, binary cross-entropy.
# ``predict`` returns the indicator matrix, which scikit-learn's multi-label metrics take.
Y_train = np.stack([d_train % 2 == 0, d_train > 4], axis=1).astype(int)
Y_test = np.stack([d_test % 2 == 0, d_test > 4], axis=1).astype(int)
labels = FineTunedClassifier("efficientnet_lite0", max_epochs=2, **params).fit(X_train, Y_train)
predicted = labels.predict(X_test)
print("labels:", ["even", "greater than 4"])
print("probabilities of the first test digit:", labels.predict_proba(X_test[:1]).round(3))
print(f"macro F1 {f1_score(Y_test, predicted, average='macro'):.3f}, "
      f"Hamming loss {hamming_loss(Y_test, predicted):.3f}, subset accuracy {labels.score(X_test, Y_test):.3f}")
