"""
The command line on a folder of images
======================================

No Python needed: ``sktransfer fit`` fine-tunes a classifier on a folder with one
sub-folder of images per class (torchvision's ``ImageFolder`` layout), reports on a
held-out split and saves the model; ``predict``, ``evaluate`` and ``extract`` use it.
Here Python only writes the folder (scikit-learn's digits as PNG files) and runs the
commands, as you would in a terminal.
"""

# %%
# Write the folder: ``digits/0/0000.png``, ``digits/1/0001.png``, ...
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from sktransfer.datasets import load_digits_images, make_image_folder

work = Path(tempfile.mkdtemp())
digits = load_digits_images()
make_image_folder(work / "digits", digits.images[:600], digits.target[:600], digits.target_names)
sktransfer = str(Path(sys.executable).with_name("sktransfer"))


def run(*args):
    """Run a command and show what it prints, as a terminal would."""
    print("$ sktransfer " + " ".join(args))
    result = subprocess.run([sktransfer, *args], cwd=work, capture_output=True, text=True, check=True)
    print(result.stdout)


# %%
# Fine-tune on 80% of the images, report on the other 20%, save the model and the
# plots. ``--quiet`` leaves out the epoch table.
run("fit", "digits", "-b", "efficientnet_lite0", "--input-size", "32", "--epochs", "3", "--augment", "none",
    "-o", "model.safetensors", "--plots", "plots", "--quiet")

# %%
# Predictions with class probabilities, as CSV (to a file with ``-o``).
run("predict", "model.safetensors", "digits/7", "--quiet")

# %%
# Scores on a labelled folder, and the features of every image.
run("evaluate", "model.safetensors", "digits", "--quiet")
run("extract", "digits", "-b", "efficientnet_lite0", "--input-size", "32", "-o", "features.npy", "--quiet")

# %%
# The plots ``fit --plots`` saved.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, name in zip(axes, ("training_curve.png", "confusion_matrix.png")):
    ax.imshow(plt.imread(work / "plots" / name))
    ax.axis("off")
fig.tight_layout()
plt.show()
