"""Fine-tuning: the skorch net, its schedules, the linear probe and the resolved training spec.

- :mod:`.net`: :class:`~sktransfer.training.net.TransferNet`, skorch's net with autocast,
  deferred loss read-back, memory back-off and sample weights;
- :mod:`.probe`: the linear probe solved to convergence;

Imports from :mod:`sktransfer.engine`, :mod:`sktransfer.data` and :mod:`sktransfer.nn`;
never from the estimators.
"""
