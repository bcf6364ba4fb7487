"""A trace channel of several traces is also reported per trace (the Deep PLC Challenge's protocol reports per
trace): lossbench/reports/tables.py:per_trace_table, in tables.md and report.html."""

from __future__ import annotations

import pandas as pd

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep
from lossbench.reports import write_report
from lossbench.reports.tables import per_trace_table


def test_each_trace_gets_its_column_with_the_loss_it_dealt(tmp_path):
    spec = spec_from_dict({"name": "pt", "clips": 2, "metrics": ["si_snr"], "examples": 0,
                           "codec": [{"spec": "pcm", "concealments": ["zeros", "repeat"]}],
                           "channel": [{"trace": "library:bernoulli-10", "traces": 3},
                                       {"model": "bernoulli", "loss": [0.1]}]})
    run_sweep(spec, tmp_path, progress=False)
    df = pd.read_parquet(tmp_path / "results.parquet")
    t = per_trace_table(df, "si_snr")
    assert t.shape == (2, 3) and all(c.startswith("bernoulli-10_0") and c.endswith(" %)") for c in t.columns)
    d = df[df["channel_kind"] == "trace"]
    first = d[d["channel_key"].str.contains("bernoulli-10_00") & (d["concealment"] == "zeros")]
    row = [r for r in t.index if r.endswith(" / zeros")]
    assert len(row) == 1 and t.loc[row[0]].iloc[0] == round(first["si_snr"].mean(), 2)
    write_report(tmp_path)
    assert "si_snr per trace" in (tmp_path / "tables.md").read_text().replace("SI-SNR (dB)", "si_snr")
