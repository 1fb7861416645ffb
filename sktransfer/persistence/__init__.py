"""A fitted estimator as plain data, and files written atomically.

- :mod:`.state`: ``__getstate__`` / ``__setstate__`` as plain data, the network rebuilt from it;
- :mod:`.atomic`: writes that readers see whole or not at all.

The safetensors file format itself is :mod:`sktransfer.saving` (public).
"""
