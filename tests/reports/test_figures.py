"""Report figures and exports on a synthetic results table: faceting, robust limits, formats and sizes,
LaTeX tables, clear messages on bad input, the trace plot's ticks and sliding loss rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossbench.errors import ConfigError
from lossbench.reports.plots import FigureOptions, robust_limits


def _results(tmp_path, n_clips=4, nan_metric=False):
    rng = np.random.default_rng(0)
    rows = []
    systems = [("Opus 9 kbps", "opus", "opus:bitrate=9000", ["opus-plc", "opus-deep-plc"], 10.1),
               ("PCM", "pcm", "pcm", ["zeros", "repeat"], 272.0)]
    for sysname, codec, cfg, concs, kbps in systems:
        for conc in concs:
            for lv in (0.0, 0.1, 0.2):
                for c in range(n_clips):
                    base = 4.5 if codec == "pcm" and lv == 0 else 3.0 - 5 * lv + (0.2 if "deep" in conc else 0)
                    rows.append({"status": "ok", "system": sysname, "codec": codec, "codec_config": cfg,
                                 "concealment": conc, "channel": "bernoulli", "channel_key": f"bernoulli:p={lv}",
                                 "loss_param": lv, "clip": f"c{c}", "seed": 0, "bitrate_kbps": kbps,
                                 "pesq_wb": base + 0.05 * rng.standard_normal(),
                                 "si_snr": (223.0 if codec == "pcm" and lv == 0 else 5 - 20 * lv + rng.standard_normal()),
                                 "stoi": np.nan if nan_metric else 0.9 - lv, "effective_loss": lv})
            for c in range(n_clips):  # a fixed channel: distributions
                rows.append({**rows[-1], "concealment": conc, "channel": "wlan", "channel_key": "markov3",
                             "loss_param": 0.138, "clip": f"c{c}", "pesq_wb": 2.0 + 0.3 * rng.standard_normal()})
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    return tmp_path


def test_report_writes_every_format_with_embedded_fonts_and_latex(tmp_path):
    from lossbench.reports import write_report

    d = _results(tmp_path)
    write_report(d, FigureOptions.parse("png,pdf,svg", "column"))
    names = {p.name for p in (d / "plots").iterdir()}
    for stem in ("loss_bernoulli_pesq_wb", "cdf_wlan_pesq_wb", "rate_pesq_wb"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= names
    pdf = (d / "plots" / "loss_bernoulli_pesq_wb.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf  # TrueType fonts embedded, no Type 3
    assert b"<text" in (d / "plots" / "loss_bernoulli_pesq_wb.svg").read_bytes()  # text stays text
    tex = (d / "tables.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    # the best PESQ-WB at 10 % is deep PLC's (about 2.7): bold, and only it in that column
    row = next(x for x in tex.splitlines() if x.startswith("Opus 9 kbps / opus-deep-plc"))
    assert row.count(r"\textbf") >= 2
    assert "bernoulli 10\\%" in tex and "PESQ-WB" in tex
    cmp = (d / "compare.tex").read_text()
    assert "Wilcoxon" in cmp and "opus-deep-plc" in cmp
    html = (d / "report.html").read_text()
    assert "Concealments compared" in html and "id='filter'" not in html  # no audio: no players, no filter


def test_figure_options_reject_unknown_values():
    with pytest.raises(ConfigError, match="unknown format 'jpg'; valid: png, pdf, svg"):
        FigureOptions.parse("png,jpg")
    with pytest.raises(ConfigError, match="--size must be one of screen, column, page, got 'a4'"):
        FigureOptions.parse("png", "a4")


def test_robust_limits_ignore_a_lossless_outlier_and_respect_the_metric_range():
    lo, hi = robust_limits(np.array([2.0, 5.0, 8.0, 3.0, 4.0, 223.0]), "si_snr")
    assert hi < 20 and lo < 2.0
    lo, hi = robust_limits(np.array([0.7, 0.8, 0.99]), "stoi")
    assert hi == 1.0
    lo, hi = robust_limits(np.array([1.1, 1.2, 4.6]), "pesq_wb")
    assert lo == 1.0 and hi == pytest.approx(4.65)


def test_clipped_points_are_marked_with_their_value(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lossbench.reports import plots

    d = _results(tmp_path)
    df = pd.read_parquet(d / "results.parquet")
    captured = {}
    orig = plots.save

    def spy(fig, out_stem, opts):
        captured["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts]
        captured["titles"] = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        return orig(fig, out_stem, opts)

    plots.save = spy
    try:
        plots.quality_vs_loss(df, "si_snr", "bernoulli", tmp_path / "x", FigureOptions())
    finally:
        plots.save = orig
    assert "223" in captured["texts"]
    assert captured["titles"][:3] == ["overview: best concealment per system", "Opus 9 kbps", "PCM"]


def test_bad_runs_give_clear_messages(tmp_path):
    from lossbench.reports import write_report

    with pytest.raises(ConfigError, match="no results.parquet"):
        write_report(tmp_path)
    pd.DataFrame({"clip": ["a"], "pesq_wb": [2.0]}).to_parquet(tmp_path / "results.parquet")
    with pytest.raises(ConfigError, match="lacks the columns status, system.*older lossbench"):
        write_report(tmp_path)
    (tmp_path / "nan").mkdir()
    d = _results(tmp_path / "nan", nan_metric=True)
    html = write_report(d).read_text()
    assert "Metric <code>stoi</code> has no values in this run" in html
    assert not list((d / "plots").glob("*stoi*"))


def test_trace_plot_has_integer_burst_ticks_and_a_sliding_loss_rate(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossbench.core import LossTrace
    from lossbench.traces import plot as tplot

    assert tplot.sliding_loss_rate(np.array([1, 0, 0, 0, 1, 1]), 2).tolist() == [1.0, 0.5, 0.0, 0.0, 0.5, 1.0]
    lost = np.zeros(3000, bool)
    lost[1000:2000] = np.random.default_rng(0).random(1000) < 0.3  # a lossy phase in the middle
    figs = []
    orig = plt.close

    def keep(fig=None):
        figs.append(fig)

    plt.close = keep
    try:
        tplot.plot_trace(LossTrace(lost, 0.02), tmp_path / "t.png")
    finally:
        plt.close = orig
    fig = figs[0]
    hist = fig.axes[1]
    fig.canvas.draw()
    ticks = [t for t in hist.get_xticks() if hist.get_xlim()[0] <= t <= hist.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    rate_line = next(line for ax in fig.axes for line in ax.get_lines() if "loss rate" in str(line.get_label()))
    y = rate_line.get_ydata()
    assert y[:900].max() == 0 and 20 < np.median(y[1100:1900]) < 40 and y[2100:].max() == 0
    plt.close(fig)
    assert (tmp_path / "t.png").exists()
