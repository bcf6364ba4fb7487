"""Sweeps: the spec (``spec``), the planner (``plan``), one job's run (``run``, its columns in ``columns``),
the executors, the result store and the sweep driver (``sweep``)."""
