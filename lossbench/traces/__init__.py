"""Loss-trace files (text 0/1, G.192, G.191, CSV, .npy), statistics and the bundled library."""

from lossbench.traces.formats import FORMATS, detect_format, read_trace, write_trace
from lossbench.traces.stats import TraceStats, trace_stats

__all__ = ["FORMATS", "TraceStats", "detect_format", "read_trace", "trace_stats", "write_trace"]
