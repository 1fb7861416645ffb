"""Fine-tuning: the skorch net, its schedules, the linear probe and the resolved training spec.

- :mod:`.spec`: :class:`~sktransfer.training.spec.TrainingSpec`, resolved once in ``fit``;
- :mod:`.net`: :class:`~sktransfer.training.net.TransferNet` (skorch's net with autocast,
  deferred loss read-back, memory back-off and sample weights) and building it from a spec;
- :mod:`.schedule`: learning-rate schedules and the two-stage freezing schedule (callbacks);
- :mod:`.averaging`: the exponential moving average of the weights (a callback);
- :mod:`.probe`: the linear probe solved to convergence;
- :mod:`.distributed`: data-parallel fitting under a launcher (torchrun): the process
  group, DDP and what the processes exchange.

Imports from :mod:`sktransfer.engine` and :mod:`sktransfer.data`;
never from the estimators.
"""
