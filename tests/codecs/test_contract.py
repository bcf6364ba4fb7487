"""The codec contract: encode and decode are pure with respect to the codec object, every codec satisfies
the protocol, facts cannot overwrite harness columns, and the backbone registry owns what it should."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lossbench.codecs import CODECS, make_codec
from lossbench.codecs.base import RESERVED_COLUMNS, Codec, CodecBase, check_fact_names
from lossbench.core import Reception
from lossbench.corpus import default_corpus
from lossbench.errors import ConfigError

SHARED_SPECS = [
    "opus:bitrate=24000,fec=1,loss_perc=10",
    "opus:bitrate=24000,dred_ms=500,loss_perc=20",
    "soundspring:layers=6,slices=1,pack=frame,fec=next",
    "glaris:q=32,side=2,offsets=1/13",
]
CONCEALMENT = {"opus:bitrate=24000,fec=1,loss_perc=10": "opus-fec", "opus:bitrate=24000,dred_ms=500,loss_perc=20":
               "opus-dred", "soundspring:layers=6,slices=1,pack=frame,fec=next": "mlm",
               "glaris:q=32,side=2,offsets=1/13": "side-info-plc"}


@pytest.fixture(scope="module")
def clips():
    return [c.load(16000) for c in default_corpus()[:2]]


def _lost(n: int, seed: int, rate: float) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < rate


@pytest.fixture
def one_torch_thread():
    """Workers run torch on one intra-op thread (``benchmarks.executors``); with more, the float sums of the
    FARGAN decoder differ between threads in their last bits and its autoregressive synthesis amplifies them."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("spec", SHARED_SPECS)
def test_two_threads_on_one_codec_object_get_their_own_facts(spec, clips, one_torch_thread):
    """Decodes of different streams and losses, interleaved on one shared object from two threads, give
    what each gives alone: the audio and every fact of its own DecodeResult."""
    codec = make_codec(spec)
    conc = CONCEALMENT[spec]
    streams = [codec.encode(c) for c in clips]
    jobs = [(s, Reception.from_lost(_lost(s.num_packets, seed, rate)))
            for s in streams for seed, rate in ((0, 0.1), (1, 0.3))]
    alone = [codec.decode(s, r, conc) for s, r in jobs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda j: codec.decode(j[0], j[1], conc), jobs * 2))
    assert len({tuple(sorted(a.info.items())) for a in alone}) > 1  # the facts differ between tasks
    for a, b in zip(alone * 2, together):
        assert a.info == b.info
        assert np.array_equal(a.audio, b.audio)
        assert np.array_equal(a.missing, b.missing)


def test_a_stream_encoded_twice_is_the_same_and_decoding_leaves_it_unchanged(clips):
    codec = make_codec("glaris:q=32,side=2,offsets=1/13")
    a = codec.encode(clips[0])
    codec.encode(clips[1])
    b = codec.encode(clips[0])
    assert a.meta == b.meta and [p.payload for p in a.packets] == [p.payload for p in b.packets]
    meta = dict(a.meta)
    codec.decode(a, Reception.from_lost(_lost(a.num_packets, 0, 0.2)), "side-info-plc")
    assert a.meta == meta


def _state(obj) -> dict:
    """What a codec object holds, as comparable values: plain data by value, anything else by identity."""
    def val(v):
        if isinstance(v, (str, int, float, bool, bytes, type(None))):
            return v
        if isinstance(v, (list, tuple)):
            return tuple(val(x) for x in v)
        if isinstance(v, dict):
            return tuple(sorted((str(k), val(x)) for k, x in v.items()))
        if isinstance(v, np.ndarray):
            return ("ndarray", v.shape, v.tobytes())
        return ("object", id(v))
    return {k: val(v) for k, v in vars(obj).items()}


@pytest.mark.parametrize("spec", ["pcm", "amrwb", "rvq", "pcm:red=1", "pcm:xor=4", *SHARED_SPECS])
def test_decoding_leaves_the_codec_object_as_it_was(spec, clips, one_torch_thread):
    """A codec keeps no facts of a stream on itself: after a first decode (which may fill load-time caches), a
    decode of another stream under other losses leaves every attribute of the object as it was."""
    codec = make_codec(spec)
    conc = CONCEALMENT.get(spec, codec.native_concealments[0] if codec.native_concealments else "zeros")
    a, b = codec.encode(clips[0]), codec.encode(clips[1])
    codec.decode(a, Reception.from_lost(_lost(a.num_packets, 0, 0.1)), conc)
    before = _state(codec)
    r = codec.decode(b, Reception.from_lost(_lost(b.num_packets, 1, 0.3)), conc)
    assert r.missing.any()  # the decode saw losses: facts to keep, had the codec kept any
    assert _state(codec) == before


@pytest.mark.parametrize("name", ["opus", "amrwb", "pcm", "rvq"])
def test_every_codec_satisfies_the_protocol(name):
    c = make_codec(name)
    assert isinstance(c, Codec)
    assert isinstance(c, CodecBase)


def test_soundspring_implements_the_protocol_directly():
    c = make_codec("soundspring:layers=6")
    assert isinstance(c, Codec)
    assert not hasattr(c, "encode_frames") and not hasattr(c, "decode_frames")


def test_a_fact_named_like_a_harness_column_is_refused_at_registration():
    with pytest.raises(ConfigError, match="'bitrate_kbps'.*rename"):
        class Bad(CodecBase):  # noqa: F841
            name = "bad"
            facts = ("bitrate_kbps", "mine")
    with pytest.raises(ConfigError, match="'status'"):
        check_fact_names("x", {"status": 1})
    assert {"task", "status", "bitrate_kbps", "channel_kind"} <= RESERVED_COLUMNS


def test_the_harness_refuses_an_undeclared_clashing_fact():
    from lossbench.benchmarks.run import facts

    assert facts("x", {"a": np.float32(1.5), "n": np.int64(3), "frames": 9, "plan": [1], "arr": np.zeros(3)}) == \
        {"a": 1.5, "n": 3}
    with pytest.raises(ConfigError, match="'late_rate'"):
        facts("x", {"late_rate": 0.5})


def test_declared_facts_are_the_facts_codecs_report(clips):
    for spec in ("opus:bitrate=24000,fec=1,loss_perc=10", "soundspring:layers=6", "glaris"):
        codec = make_codec(spec)
        s = codec.encode(clips[0])
        r = codec.decode(s, Reception.from_lost(_lost(s.num_packets, 0, 0.2)), codec.native_concealments[0])
        reported = ({k for k in s.meta if k not in ("frames", "plan", "fec_kbps")} | set(r.info))
        assert reported <= set(type(codec).facts) | {"lbrr_present"}, reported - set(type(codec).facts)


# ---------------------------------------------------------------------------- the backbone registry


def test_backbones_are_registered_objects_with_their_layout():
    from lossbench.codecs.neural.backbones import BACKBONES, backbone_class

    assert BACKBONES.names() == ["fargan", "waveform"]
    assert backbone_class("fargan").pitch_layers == 2 and backbone_class("waveform").pitch_layers == 0
    assert backbone_class("fargan").feature_plc and not backbone_class("waveform").feature_plc
    with pytest.raises(ConfigError, match="backbone must be one of fargan, waveform, got 'lpcnet'"):
        backbone_class("lpcnet")


@pytest.mark.parametrize("name", ["waveform", "fargan"])
def test_loading_a_backbone_leaves_torch_global_state_alone(name):
    import torch

    from lossbench.codecs.neural.backbones import get_backbone

    get_backbone.cache_clear()
    threads = torch.get_num_threads()
    for grad in (False, True):
        torch.set_grad_enabled(grad)
        get_backbone.cache_clear()
        get_backbone(name)
        assert torch.is_grad_enabled() == grad
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("name", ["waveform", "fargan"])
def test_tokens_to_latent_to_audio_is_what_the_rvq_codec_decodes(name, clips):
    from lossbench.codecs.neural.backbones import get_backbone

    bb = get_backbone(name)
    cod = make_codec(f"rvq:backbone={name},layers=8")
    assert cod.backbone is bb
    x = cod.padded_input(clips[0])
    toks = bb.encode(x, 8)
    y = bb.latent_to_audio(bb.tokens_to_latent(toks))
    d = cod.delay_samples
    ref = cod.decode(cod.encode(clips[0])).audio
    n = clips[0].num_samples
    assert np.allclose(np.clip(y[d : d + n], -1, 1), ref, atol=1e-6)


def test_glaris_voices_pitch_through_the_backbone_not_its_internals():
    import inspect

    from lossbench.codecs.glaris import codec as g

    src = inspect.getsource(g)
    assert ".net." not in src and "pitch_values" not in src
    assert all(n in CODECS for n in ("rvq", "soundspring", "glaris"))


def test_mlm_predicts_the_lower_levels_only_and_mlm_all_every_layer(clips):
    """``mlm`` with conceal_layers=3 restores only the coarse layers of a frame that lost its packet (so its
    latent is what zero-token gives plus the concealed coarse part); ``mlm-all`` restores all K = 6."""
    spec = "soundspring:layers=6,slices=1,pack=frame,fec=none,conceal_layers=3"
    codec = make_codec(spec)
    s = codec.encode(clips[0])
    lost = np.zeros(s.num_packets, bool)
    lost[20:23] = True
    rec = Reception.from_lost(lost)
    low, every, zero = codec.decode_many(s, rec, ["mlm", "mlm-all", "zero-token"])
    assert not np.array_equal(low.audio, every.audio) and not np.array_equal(low.audio, zero.audio)
    # depth 3 conceals the frames that lost coarse tokens; mlm-all also those that kept them but lost fine ones
    assert 0 < low.info["concealed_frames"] < every.info["concealed_frames"]
    assert 0.0 <= low.info["i_token_fraction"] <= 1.0
    for r, c in zip((low, every, zero), ("mlm", "mlm-all", "zero-token")):  # decode_many is decode, in order
        assert np.array_equal(r.audio, codec.decode(s, rec, c).audio)


@pytest.mark.parametrize("name,k", [("waveform", 1), ("fargan", 3)])
def test_latent_to_tokens_inverts_tokens_to_latent_where_the_code_is_one_codeword(name, k, clips):
    """With one RVQ layer (after fargan's two exact pitch tokens) a decoded latent is a single codeword, whose
    nearest codeword is itself: latent -> tokens must give the tokens back exactly."""
    from lossbench.codecs.neural.backbones import get_backbone

    bb = get_backbone(name)
    x = make_codec(f"rvq:backbone={name}").padded_input(clips[0])
    toks = bb.encode(x, k)
    assert np.array_equal(bb.latent_to_tokens(bb.tokens_to_latent(toks), k), toks)
    full = bb.encode(x)
    again = bb.latent_to_tokens(bb.tokens_to_latent(full))
    assert again.shape == full.shape and np.array_equal(again[:, : bb.pitch_layers], full[:, : bb.pitch_layers])
