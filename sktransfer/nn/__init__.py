"""The torch side (internal: no stable API).

``preprocess`` (raw batches to normalized inputs, on the device), ``augment``
(train-time flips and crops), ``pooling`` (a stage's output to one vector),
``freezing`` (frozen stages stay frozen, BatchNorm statistics included) and
``networks`` (the modules the estimators assemble from those parts and a
backbone).
"""
