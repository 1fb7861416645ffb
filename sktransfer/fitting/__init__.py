"""What ``fit`` checks and resolves before any data or weights are read.

- :mod:`.params`: the parameter tables and their checks, and the fit context;
- :mod:`.spec`: :class:`~sktransfer.fitting.spec.NetworkSpec`, the resolved network configuration;
- :mod:`.seeding`: reproducible randomness that leaves the caller's RNG alone;
- :mod:`.memo`: loaded backbones kept for the next fit.
"""
