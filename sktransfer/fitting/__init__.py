"""What ``fit`` checks and resolves before any data or weights are read.

- :mod:`.params`: the parameter tables and their checks (the fit context that runs them
  first is the estimators' own, ``sktransfer._estimator.fit_context``);
- :mod:`.spec`: :class:`~sktransfer.fitting.spec.NetworkSpec`, the resolved network configuration;
- :mod:`.device`: the device and precision behind ``"auto"``;
- :mod:`.seeding`: reproducible randomness that leaves the caller's RNG alone;
- :mod:`.memo`: loaded backbones kept for the next fit.
"""
