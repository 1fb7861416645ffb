"""Inputs on their way to a network (internal: no stable API).

``inputs`` classifies and validates every accepted kind of image input into a source;
``decoding`` turns files and PIL images into the pixels the network sees (and keys them);
``sources`` reads batches (the one ``Source`` protocol); ``text`` holds texts; ``files``
finds image files under folders; ``loader`` carries batches to the device, reading ahead.
"""
