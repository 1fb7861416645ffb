"""
Sound through an image network
==============================

``audio/efficientnet_lite0`` turns each clip into a log-mel spectrogram image and runs
EfficientNet-Lite0, pretrained on ImageNet photographs, over it: the published recipe for
transfer learning to sound. Here the clips are made up on the spot (rising and falling
whistles, and hisses, at random pitches and lengths), so the example runs anywhere;
``benchmarks/bench_audio.py`` runs the same on spoken digits.
"""

# %%
# Three kinds of sound, 60 clips each, at 16 kHz.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor

rate = 16000
rng = np.random.default_rng(0)


def clip(kind):
    seconds = rng.uniform(0.6, 1.4)
    t = np.arange(int(seconds * rate)) / rate
    start, end = rng.uniform(300, 800), rng.uniform(1500, 3000)
    if kind == "falling":
        start, end = end, start
    if kind == "hiss":
        wave = rng.standard_normal(len(t))
    else:  # a whistle sweeping from start to end Hz
        wave = np.sin(2 * np.pi * (start * t + (end - start) * t ** 2 / (2 * seconds)))
    return (0.3 * wave * np.hanning(len(t))).astype(np.float32)


kinds = ["rising", "falling", "hiss"]
y = np.repeat(kinds, 60)
waves = [clip(kind) for kind in y]
train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)

# %%
# What the network sees: the front end's spectrogram images (time across, frequency up).
extractor = PretrainedFeatureExtractor("audio/efficientnet_lite0", input_size=64, sample_rate=rate)
extractor.fit(waves[:1])
front_end = extractor.model_.preprocess
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, kind in zip(axes, kinds):
    image = front_end(torch.from_numpy(waves[list(y).index(kind)][None]))
    ax.imshow(image[0, 0].numpy(), cmap="magma", origin="upper")
    ax.set(title=kind, xticks=[], yticks=[])
fig.tight_layout()
plt.show()

# %%
# Frozen ImageNet features and a logistic regression, then fine-tuning: both on the
# waveforms as they are (``sample_rate`` says their rate; files would carry their own).
features = make_pipeline(extractor, StandardScaler(), LogisticRegression(max_iter=1000))
features.fit([waves[i] for i in train], y[train])
print(f"frozen features + LogisticRegression: {features.score([waves[i] for i in test], y[test]):.3f}")
tuned = FineTunedClassifier("audio/efficientnet_lite0", input_size=64, sample_rate=rate, max_epochs=5, batch_size=16,
                            random_state=0)
tuned.fit([waves[i] for i in train], y[train])
print(f"fine-tuned, 5 epochs:                 {tuned.score([waves[i] for i in test], y[test]):.3f}")
