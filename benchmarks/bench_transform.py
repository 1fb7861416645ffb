"""PretrainedFeatureExtractor.transform against raw PyTorch loops run in the same process.

CPU (targets 6a): ResNet-18 and EfficientNet-Lite0 features from host uint8
images, against a plain fp32 ``inference_mode`` loop at the same input size.
Issue 14: ``compile="auto"`` (the default) over 2,000 images at 112 px in one call,
compile decision and compile time included, against the eager raw loop, the compiled
raw loop (steady rate and first-call cost), and on 64 images.

GPU (targets 1 and 2, skipped without CUDA): ResNet-18 at 224 px
  1. host uint8 (n, 224, 224, 3) against (a) the plain raw loop: pinned copy,
     normalize on the GPU, fp16 channels-last, no overlap; (b) the model alone on
     data already on the GPU at the same precision; (c) the naive path: PIL per
     image + torchvision transforms + DataLoader(8 workers), fp32, batch 64;
  2. host uint8 (n, 28, 28) grayscale resized to 224 on the GPU, against the raw
     loop doing the same.
  Issue 14 on the GPU: the same loop and the model alone compiled by hand (inductor
  with CUDA graphs), and ``compile=True``, steady rate and first-call cost.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from _common import save, sync, timer
from sktransfer import PretrainedFeatureExtractor, get_backbone


def _ours(backbone, X, *, input_size=None, precision="auto", device="auto", **params):
    extractor = PretrainedFeatureExtractor(backbone, weights=None, random_state=0, input_size=input_size,
                                           precision=precision, device=device, cache=False, **params)
    extractor.fit(X[:1])
    # warm-up at the timed run's batch shape (cuDNN autotunes per shape), as the raw loop's is
    extractor.transform(X[: 512 if extractor.device_.type == "cuda" else 64])
    with timer(extractor.device_) as elapsed:
        features = extractor.transform(X)
    return features, len(X) / elapsed()


def _model(backbone, device, dtype, channels_last):
    torch.manual_seed(0)
    module = get_backbone(backbone, weights=None).module.eval().to(device=device, dtype=dtype)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def raw_cpu_loop(backbone, X, size, batch_size=32):
    """What one writes by hand on a CPU: slice, float, resize, normalize, forward, pool."""
    model = _model(backbone, "cpu", torch.float32, False)
    config = get_backbone(backbone, weights=None).data_config
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    out = []
    with timer("cpu") as elapsed, torch.inference_mode():
        for i in range(0, len(X), batch_size):
            xb = torch.from_numpy(X[i:i + batch_size]).permute(0, 3, 1, 2).float() / 255
            xb = F.interpolate(xb, size=(size, size), mode=config.interpolation, antialias=True,
                               align_corners=False)
            out.append(model((xb - mean) / std).mean((2, 3)).numpy())
    return np.concatenate(out), len(X) / elapsed()


def cpu(quick):
    n = 128 if quick else 512
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    results = {}
    for backbone, size in (("resnet18", 112), ("efficientnet_lite0", 112), ("resnet18", 224)):
        if quick and size == 224:
            continue
        reference, raw_rate = raw_cpu_loop(backbone, X, size)
        features, rate = _ours(backbone, X, input_size=size, device="cpu")
        results[f"{backbone}@{size}"] = {
            "images": n, "sktransfer_images_per_s": round(rate, 1),
            "raw_fp32_inference_mode_loop_images_per_s": round(raw_rate, 1),
            "ratio": round(rate / raw_rate, 3), "target_ratio": 0.9,
            "max_abs_feature_difference": float(np.abs(features - reference).max()),
        }
    return results


def compiled_raw_cpu_loop(backbone, X, size, batch_size=32):
    """The hand-written loop with the model compiled (inductor, weights frozen in), as one
    would for a long CPU job: returns (steady images/s, first-call seconds)."""
    model = _model(backbone, "cpu", torch.float32, True)
    compiled = torch.compile(model, dynamic=False, options={"freezing": True})
    xb = torch.rand(batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
    with timer("cpu") as first, torch.inference_mode():
        compiled(xb)
    n = len(X) - len(X) % batch_size  # whole batches: one shape
    with timer("cpu") as elapsed, torch.inference_mode():
        for _ in range(0, n, batch_size):
            compiled(xb)
    return n / elapsed(), first()


def compile_auto_cpu(quick):
    """Issue 14 on the CPU: ``compile="auto"`` (the default) over 2,000 images at 112 px,
    compile decision and time included, against the eager raw loop; and 64 images."""
    n = 256 if quick else 2000
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    results = {}
    for backbone, size, target in (("resnet18", 112, 1.15), ("efficientnet_lite0", 112, 1.25)):
        _, raw_rate = raw_cpu_loop(backbone, X, size)
        extractor = PretrainedFeatureExtractor(backbone, weights=None, random_state=0, input_size=size,
                                               device="cpu", cache=False).fit(X[:1])
        with timer("cpu") as elapsed:  # one call, as a user makes it: decision and compile included
            extractor.transform(X)
        decision = _compile_decision()
        few = PretrainedFeatureExtractor(backbone, weights=None, random_state=0, input_size=size, device="cpu",
                                         cache=False).fit(X[:1])
        with timer("cpu") as small:
            few.transform(X[:64])
        _, small_raw_rate = raw_cpu_loop(backbone, X[:64], size)
        compiled_rate, first_call = compiled_raw_cpu_loop(backbone, X, size)
        results[f"{backbone}@{size}"] = {
            "images": n, "compile_auto_images_per_s": round(n / elapsed(), 1),
            "ratio_vs_eager_raw_loop": round(n / elapsed() / raw_rate, 3), "target_ratio": target,
            "ratio_vs_compiled_model_only_loop_steady": round(n / elapsed() / compiled_rate, 3),
            "compiled_model_only_first_call_seconds": round(first_call, 1),
            "compiled_model_only_speedup_over_eager_raw_loop": round(compiled_rate / raw_rate, 3),
            "decision": decision,
            "64_images_ratio_vs_eager_raw_loop": round(64 / small() / small_raw_rate, 3),
        }
    return results


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def raw_gpu_loop(model, images, *, pin_first=True, batch=256):
    """The plain loop: host uint8 -> pinned H2D -> normalize (and resize) on the GPU -> fp16
    channels-last -> numpy features, one batch at a time, no overlap. ``pin_first`` pins the
    whole array before the clock starts (the loop's best case); otherwise each batch is
    pinned inside the loop, as our loader does."""
    device = next(model.parameters()).device
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in IMAGENET)
    host = torch.from_numpy(images)
    if pin_first:
        host = host.pin_memory()
    with timer(device) as elapsed, torch.inference_mode():
        for i in range(0, len(host), batch):
            xb = host[i:i + batch]
            xb = (xb if pin_first else xb.pin_memory()).to(device, non_blocking=True)
            xb = xb.permute(0, 3, 1, 2).float() if xb.ndim == 4 else xb.unsqueeze(1).float()
            if xb.shape[-1] != 224:
                xb = F.interpolate(xb, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
            xb = ((xb / 255 - mean) / std).to(torch.float16).contiguous(memory_format=torch.channels_last)
            model(xb).mean((2, 3)).float().cpu().numpy()
    return len(images) / elapsed()


def model_only(model, n, batch=256):
    """Images/s of the network alone on a batch already on the GPU."""
    device = next(model.parameters()).device
    xb = torch.randn(batch, 3, 224, 224, device=device, dtype=torch.float16)
    xb = xb.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model(xb)
        with timer(device) as elapsed:
            for _ in range(n // batch):
                model(xb)
    return (n // batch) * batch / elapsed()


class _Graphed(torch.nn.Module):
    """A model compiled by hand as one would for a long GPU job: inductor + CUDA graphs."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, dynamic=False, mode="reduce-overhead")

    def forward(self, x):
        torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(x).clone()


def naive_gpu(images, device, batch=64):
    """PIL per image + torchvision transforms + DataLoader(8 workers), fp32."""
    from PIL import Image
    from torchvision import transforms

    fp32 = _model("resnet18", device, torch.float32, False)
    pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize(*IMAGENET)])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return pipeline(Image.fromarray(images[i]))

    loader = torch.utils.data.DataLoader(Images(), batch_size=batch, num_workers=8)
    with timer(device) as elapsed, torch.inference_mode():
        for xb in loader:
            fp32(xb.to(device)).mean((2, 3)).cpu()
    return len(images) / elapsed()


def gpu(quick):
    """Targets 1 and 2 on the GPU, ``compile="auto"`` (the default) included."""
    n = 4096 if quick else 20480
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    model = _model("resnet18", device, torch.float16, True)

    raw_gpu_loop(model, X[:512])  # warm-up
    ours = _ours("resnet18", X, precision="float16", device="cuda")[1]
    decision = _compile_decision()
    raw = raw_gpu_loop(model, X)
    raw_pinning = raw_gpu_loop(model, X, pin_first=False)
    alone = model_only(model, n)
    slow = naive_gpu(X[: n // 4], device)
    ours_gray = _ours("resnet18", gray, input_size=224, precision="float16", device="cuda")[1]
    raw_gray = raw_gpu_loop(model, gray)
    sync(device)
    return {
        "target1_uint8_224": {
            "sktransfer_images_per_s": round(ours), "compile_auto_decision": decision,
            "raw_loop_images_per_s": round(raw), "raw_loop_pinning_per_batch_images_per_s": round(raw_pinning),
            "model_only_images_per_s": round(alone), "naive_pil_dataloader_images_per_s": round(slow),
            "ratio_vs_raw_loop": round(ours / raw, 3), "target_vs_raw_loop": 1.0,
            "ratio_vs_raw_loop_pinning_per_batch": round(ours / raw_pinning, 3),
            "ratio_vs_model_only": round(ours / alone, 3), "target_vs_model_only": 0.85,
            "ratio_vs_naive": round(ours / slow, 2), "target_vs_naive": 10.0,
        },
        "target2_gray28_to_224": {
            "sktransfer_images_per_s": round(ours_gray), "raw_resize_loop_images_per_s": round(raw_gray),
            "ratio": round(ours_gray / raw_gray, 3), "target": 0.9,
        },
        "settings": {"backbone": "resnet18", "precision": "float16 weights, channels_last",
                     "images": n, "batch": "auto (256 at 224 px)", "compile": "auto (the default)",
                     "raw_loop": "whole array pinned before the clock, unless named per batch"},
    }


def compile_gpu(quick):
    """Issue 14 on the GPU: what compiling (inductor + CUDA graphs) gives, by hand and through
    ``compile=True``, steady rate and first-call cost, against the eager raw loop."""
    n = 4096 if quick else 20480
    device = torch.device("cuda")
    X = np.random.default_rng(2).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    eager = _model("resnet18", device, torch.float16, True)
    raw_gpu_loop(eager, X[:512])
    raw = raw_gpu_loop(eager, X)
    alone = model_only(eager, n)
    graphed = _Graphed(eager)
    with timer(device) as first:
        raw_gpu_loop(graphed, X[:256])
    raw_compiled = raw_gpu_loop(graphed, X)
    alone_compiled = model_only(graphed, n)
    extractor = PretrainedFeatureExtractor("resnet18", weights=None, random_state=0, precision="float16",
                                           device="cuda", cache=False, compile=True).fit(X[:1])
    with timer(device) as ours_first:
        extractor.transform(X[:256])
    with timer(device) as elapsed:
        extractor.transform(X)
    ours = n / elapsed()
    return {
        "resnet18@224_float16": {
            "images": n,
            "eager_raw_loop_images_per_s": round(raw), "compiled_raw_loop_images_per_s": round(raw_compiled),
            "eager_model_only_images_per_s": round(alone), "compiled_model_only_images_per_s": round(alone_compiled),
            "compiled_model_only_speedup": round(alone_compiled / alone, 3),
            "compiled_raw_loop_speedup": round(raw_compiled / raw, 3),
            "compiled_raw_loop_first_call_seconds": round(first(), 1),
            "sktransfer_compile_true_images_per_s": round(ours),
            "sktransfer_compile_true_first_call_seconds": round(ours_first(), 1),
            "sktransfer_compile_true_ratio_vs_eager_raw_loop": round(ours / raw, 3),
            "sktransfer_compile_true_ratio_vs_compiled_raw_loop": round(ours / raw_compiled, 3),
            "compile_auto_decision": _compile_decision(),
        },
    }


def _compile_decision():
    from sktransfer.engine import compile as _compile

    decision = _compile.decisions[-1]
    return {"compiled": decision.compiled, "reason": decision.reason,
            "compile_seconds_estimate": decision.compile_seconds_estimate,
            "compile_seconds": decision.compile_seconds}


def run(quick=False):
    """The CPU rows (on a GPU machine too: forced to the CPU)."""
    return {"cpu": cpu(quick), "compile_auto_cpu": compile_auto_cpu(quick)}


def run_gpu(quick=False):
    """The GPU rows, skipped without CUDA."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    return {"gpu": gpu(quick), "compile_gpu": compile_gpu(quick)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    save("transform", run(quick))
    save("transform_gpu", run_gpu(quick))
