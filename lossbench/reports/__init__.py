"""Reports from result files only: plots, markdown tables, report.html.

This package reads ``results.parquet`` (and the audio examples a sweep kept)
and never runs a codec; it imports only numpy, scipy, pandas and matplotlib.
"""

from lossbench.reports.html import write_report

__all__ = ["write_report"]
