"""Running a frozen network over a whole input.

- :mod:`.features`: the one feature path of every estimator (``extract``, ``run``);
- :mod:`.cache`: the verified, content-keyed feature cache;
- :mod:`.device`: the device, precision and batch size a network runs at;
- :mod:`.backoff`: out-of-memory back-off, in pieces of a batch;
- :mod:`.compile`: ``compile="auto"``;
- :mod:`.progress`: progress display.

Imports from :mod:`sktransfer.data`, :mod:`sktransfer.nn` and :mod:`sktransfer.persistence`
only; never from the estimators.
"""
