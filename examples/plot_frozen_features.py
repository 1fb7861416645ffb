"""
Frozen pretrained features + LogisticRegression
===============================================

The quickest transfer learning there is: a pretrained network, frozen, turns each
image into a vector of features, and an ordinary scikit-learn classifier learns from
those. :class:`~sktransfer.PretrainedFeatureExtractor` is a transformer, so it goes
into a :class:`~sklearn.pipeline.Pipeline` like any other.

Here the network is EfficientNet-Lite0 with its ImageNet weights (installed as a
package: no download), and the images are scikit-learn's handwritten digits. We
compare with the same classifier on the raw pixels, and look at the features with an
:class:`~sktransfer.display.EmbeddingDisplay`.
"""

# %%
# The data: 1,797 digits of 8x8 pixels, as uint8 images.
import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_digits_images
from sktransfer.display import EmbeddingDisplay

digits = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    digits.images, digits.target, test_size=450, stratify=digits.target, random_state=0)

# %%
# Raw pixels against frozen features. ``input_size=32`` blows the 8x8 digits up to
# 32x32: large enough for the network's stages, seven times cheaper than its 224 px.
raw = make_pipeline(FunctionTransformer(lambda X: X.reshape(len(X), -1)), StandardScaler(),
                    LogisticRegression(max_iter=3000))
frozen = make_pipeline(PretrainedFeatureExtractor("efficientnet_lite0", input_size=32),
                       StandardScaler(), LogisticRegression(max_iter=3000))
for name, model in {"raw pixels": raw, "frozen EfficientNet-Lite0 features": frozen}.items():
    model.fit(X_train, y_train)
    print(f"{name:36} test accuracy {model.score(X_test, y_test):.3f}")

# %%
# On digits the ImageNet features lose to raw pixels: photographs of objects are far
# from 8x8 pen strokes, and a frozen network cannot adapt. Fine-tuning can (see the
# other examples, or ``sktransfer demo``). On photographs, frozen features are strong.
#
# The embedding shows what the frozen features see: PCA of the 1,280 features,
# coloured by digit, with a few digits drawn where they fall.
extractor = frozen[0]
display = EmbeddingDisplay.from_estimator(extractor, X_test, y_test, thumbnails=12, random_state=0)
display.ax_.set_title("frozen EfficientNet-Lite0 features of the test digits (PCA)")
plt.show()
