"""A fitted estimator as plain data, and files written atomically.

- :mod:`.state`: ``__getstate__`` / ``__setstate__`` as plain data, the network rebuilt from it;
- :mod:`.atomic`: writes that readers see whole or not at all;
- :mod:`.export`: a serving graph traced, checked and written as ONNX or ``.pt2``.

The safetensors file format itself is :mod:`sktransfer.saving`, and the export of an
estimator :mod:`sktransfer.exporting` (both public).
"""
