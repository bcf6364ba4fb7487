"""An example lossbench plug-in package: a codec, a concealment, a loss model and a metric (see docs/plugins.md)."""
