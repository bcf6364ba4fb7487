"""Receiver playout: time-scale modification (WSOLA) and the E-model's planning scores.

The playout buffers themselves (fixed, adaptive) live in :mod:`lossbench.netsim.network`.
"""
