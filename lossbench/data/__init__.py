"""Training data for the neural codecs: ``lossbench data prepare-speech``."""
