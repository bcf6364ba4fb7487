"""Every ``NAME:k=v`` value a user can type gives a valid object or a LossbenchError, never another exception."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossbench.codecs import make_codec
from lossbench.codecs.base import CODECS
from lossbench.errors import ConfigError, LossbenchError
from lossbench.netsim.spec import parse_cross, parse_jitter, parse_playout, parse_rate, parse_seconds
from lossbench.netsim.spec import LOSS_MODELS, make_loss_model
from lossbench.specs import _accepted

PROP = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

VALUES = st.one_of(
    st.sampled_from(["0", "1", "-1", "2", "10", "0.5", "1e9", "-3.5", "nan", "inf", "true", "no", "maybe", "high",
                     "", "x", "20ms", "1/13", "24000", "0.1", "%", "50%", "fargan", "system", "lace", "()", "1,2"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="abc019.-_/%", max_size=6),
)


def _specs(names, params_of):
    @st.composite
    def spec(draw):
        name = draw(st.sampled_from(names))
        keys = params_of(name) + ["bogus"]
        kv = draw(st.lists(st.tuples(st.sampled_from(keys), VALUES), max_size=3))
        body = ",".join(f"{k}={v}" for k, v in kv)
        s = f"{name}:{body}" if body else name
        if draw(st.booleans()) and draw(st.booleans()):  # mutate: drop or insert a character
            i = draw(st.integers(0, len(s)))
            s = s[:i] + draw(st.sampled_from(["", "=", ",", ":", "(", ")", " ", "x"])) + s[i + 1 :]
        return s

    return spec()


# the neural codecs load models: exercise their options on the quick ones only
CODEC_NAMES = [n for n in CODECS.names() if n not in ("soundspring", "glaris")]


def _params(registry, name):
    return _accepted(registry.get(name))[0]


def _finite(v) -> bool:
    return not (isinstance(v, float) and not math.isfinite(v))


def _given(spec: str) -> dict:
    from lossbench.specs import parse_value, split_spec

    return {k: (parse_value(v) if isinstance(v, str) else v) for k, v in split_spec(spec)[1].items()}


def check_codec_accepted(spec: str, codec) -> None:
    """What an accepted codec spec must satisfy, so that a bad value silently accepted is noticed:
    its config is finite, names the values the user gave (none silently changed, when the key is a config
    key), and rebuilds to the same codec from its own description."""
    cfg = codec.config()
    assert all(_finite(v) for v in cfg.values()), (spec, cfg)
    for k, v in _given(spec).items():
        if k in cfg and not isinstance(v, bool) and isinstance(v, (int, float)):
            assert float(cfg[k]) == float(v), f"{spec!r}: {k}={v!r} was accepted but became {cfg[k]!r}"
    again = make_codec(codec.describe())
    assert again.config() == cfg, (spec, codec.describe())
    assert codec.sample_rate_hz > 0 and codec.frame_samples > 0 and codec.delay_samples >= 0


def check_loss_model_accepted(spec: str, model) -> None:
    """An accepted loss model must have a finite loss rate in [0, 1] where it has closed-form statistics, and
    finite parameters."""
    st = model.stats()
    if st is not None:
        assert 0.0 <= st.loss_rate <= 1.0, (spec, st)
    assert all(_finite(v) for v in model.params().values() if isinstance(v, float)), (spec, model.params())


@PROP
@given(_specs(CODEC_NAMES, lambda n: _params(CODECS, n)))
def test_codec_specs_give_a_codec_or_a_lossbench_error(spec):
    try:
        codec = make_codec(spec)
    except LossbenchError:
        return
    check_codec_accepted(spec, codec)


@pytest.mark.parametrize("spec", ["opus:bitrate=6000", "opus:kbps=12.5,frame_ms=40", "amrwb:mode=2", "pcm:frame_ms=10",
                                  "opus:complexity=3,loss_perc=20,fec=1"])
def test_the_acceptance_oracle_passes_good_specs(spec):
    check_codec_accepted(spec, make_codec(spec))


def test_the_acceptance_oracle_notices_a_silently_changed_value():
    """The oracle itself can fail: a codec that accepts a value and keeps another is caught."""

    class Clamping:
        sample_rate_hz, frame_samples, delay_samples = 16000, 320, 0

        def config(self):
            return {"bitrate": 6000}

        def describe(self):
            return "opus:bitrate=6000"

    with pytest.raises(AssertionError, match="was accepted but became"):
        check_codec_accepted("opus:bitrate=1", Clamping())


@PROP
@given(_specs(LOSS_MODELS.names(), lambda n: _params(LOSS_MODELS, n)))
def test_loss_model_specs_give_a_model_or_a_lossbench_error(spec):
    try:
        model = make_loss_model(spec)
    except LossbenchError:
        return
    check_loss_model_accepted(spec, model)


@PROP
@given(st.one_of(_specs(["poisson", "onoff"], lambda n: ["rate", "size", "on", "off"]),
                 _specs(["fixed", "adaptive", "none"], lambda n: ["alpha", "safety", "adapt_every_s", "min_delay_s"]),
                 _specs(["normal", "pareto", "uniform", "exponential", "none", "gauss", "lognormal", "ar1", "spikes",
                         "periodic"], lambda n: []),
                 VALUES))
def test_network_options_give_a_value_or_a_lossbench_error(text):
    for parse in (parse_cross, parse_playout, parse_jitter, parse_rate, parse_seconds):
        try:
            parse(text)
        except LossbenchError:
            pass


@pytest.mark.parametrize("spec,message", [
    ("opus:complexity=high", "opus'?: complexity must be an integer, got 'high'"),
    ("opus:bitrate=abc", "bitrate must be an integer"),
    ("opus:fec=maybe", "fec must be a boolean"),
    ("rvq:layers=x", "layers must be an integer"),
    ("amrwb:kbps=fast", "kbps must be"),
])
def test_bad_codec_values_name_key_value_and_form(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_codec(spec)


@pytest.mark.parametrize("spec,message", [
    ("gilbert:loss_rate=0.1,mean_burst=abc", "mean_burst must be a number, got 'abc'"),
    ("bernoulli:p=yes", "p must be a number"),
    ("trace:file=x.txt,offset=abc", "offset must be an integer"),
])
def test_bad_loss_values_name_key_value_and_form(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_loss_model(spec)


def test_booleans_accept_only_the_documented_words():
    assert make_codec("opus:fec=on").fec is True
    assert make_codec("opus:fec=0").fec is False
    for bad in ("maybe", "2", "y"):
        with pytest.raises(ConfigError, match="boolean"):
            make_codec(f"opus:fec={bad}")


@pytest.mark.parametrize("fn,text,message", [
    (parse_cross, "poisson:rate=10,burst=3", "unknown parameter 'burst'"),
    (parse_cross, "onoff:on=x", "on must be a number"),
    (parse_playout, "fixedfoo", "unknown playout buffer"),
    (parse_playout, "adaptive:speed=2", "unknown parameter 'speed'"),
    (parse_rate, "fast", "not a rate"),
    (parse_rate, "1e999", "finite"),
    (parse_jitter, "gauss:10ms", "unknown jitter kind"),
])
def test_malformed_network_options(fn, text, message):
    with pytest.raises(ConfigError, match=message):
        fn(text)
