"""DistillMOS: the package's own model gives our number, it ranks the PLCMOS reference clips as their
published PLCMOS scores do (../shared, skipped without it), and bad input is a NaN with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.corpus import default_corpus
from lossbench.metrics import compute_metrics
from lossbench.metrics.learned import distillmos
from tests.metrics.test_metrics import SHARED_ROOT


def test_equals_the_package_model_called_as_its_readme_says():
    import torch

    x = default_corpus()[0].load(16000).samples
    ours = distillmos(x, x, 16000)["distillmos"]
    import distillmos as dm  # imported by the call above (without torchaudio, which it does not need)

    model = dm.ConvTransformerSQAModel()
    model.eval()
    with torch.no_grad():
        want = float(model(torch.tensor(x, dtype=torch.float32)[None]).item())
    assert ours == pytest.approx(want, abs=1e-5)


@pytest.mark.needs_shared
def test_orders_the_plcmos_reference_clips_and_punishes_gaps():
    import soundfile as sf

    ref = SHARED_ROOT / "reference" / "plcmos"
    if not (ref / "clean.wav").exists():
        pytest.skip(f"{ref} not present")
    s = {n: distillmos(sf.read(ref / f"{n}.wav")[0], None, 16000)["distillmos"] for n in ("clean", "plc_good", "plc_poor")}
    assert s["clean"] > s["plc_good"] > s["plc_poor"] + 1.0, s
    x = default_corpus()[0].load(16000).samples
    gapped = x * (np.arange(x.size) % 8000 > 1600)  # 100 ms of every 500 ms silent
    assert distillmos(x, x, 16000)["distillmos"] > distillmos(gapped, x, 16000)["distillmos"] + 1.0


def test_bad_input_is_nan_with_a_reason():
    out = compute_metrics(np.zeros(32000), np.zeros(32000), 16000, ["distillmos"])
    assert np.isnan(out["distillmos"]) and "silent" in out["distillmos_error"]
    out = compute_metrics(np.full(8000, 0.1), np.ones(8000), 16000, ["distillmos"])
    assert np.isnan(out["distillmos"]) and "too short" in out["distillmos_error"]
    x = default_corpus()[0].load(48000).samples
    out = compute_metrics(x, x, 48000, ["distillmos"])
    assert out["distillmos"] > 3.5 and out["metrics_resampled"] == "distillmos@16000"
