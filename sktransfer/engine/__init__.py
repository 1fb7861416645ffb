"""Running a frozen network over a whole input.

- :mod:`.features`: the one feature path of every estimator (``extract``, ``run``);
- :mod:`.cache`: the verified, content-keyed feature cache;
- :mod:`.budgets`: batch sizes, and the memory stored outputs may take;
- :mod:`.backoff`: out-of-memory back-off, in pieces of a batch;
- :mod:`.compile`: ``compile="auto"``;
- :mod:`.progress`: progress display.

Imports from :mod:`sktransfer.data` and :mod:`sktransfer.persistence` only.
"""
