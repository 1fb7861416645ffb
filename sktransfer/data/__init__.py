"""Inputs on their way to a network (internal: no stable API).

``inputs`` validates every accepted kind of input and reads it in batches;
``loader`` carries those batches to the device, reading ahead.
"""
