"""Learned, non-intrusive MOS estimators from speechmos: PLCMOS v2 and DNSMOS P.835.

PLCMOS v2 averages its ONNX model over 15 random rater embeddings. speechmos
runs the whole model once per embedding, although the embedding enters only
a small head (Gemm/LeakyReLU layers, then a Concat with the audio branch).
:class:`FastPLCMOS` splits the graph where it loads it: the audio branch
(every node that does not depend on ``rater_embed``) runs once per clip, the
head once for all 15 embeddings as a batch. The embeddings are drawn as
speechmos draws them (NumPy seeded with 23, 15 draws of shape (1, 64), which
equal one draw of shape (15, 64)), so the score equals speechmos's
``plcmos.run`` (tested to 1e-5 on the corpus and the shared reference clips).

The ONNX model files come from the installed speechmos; none is copied into
lossbench. Every session runs on one intra-op and one inter-op thread, see
:func:`session_options`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from lossbench.concurrency import locked_cache
from lossbench.errors import ConfigError
from lossbench.metrics.common import MetricUnavailable, _check_single, _resample

#: the speechmos release whose plcmos_v2.onnx graph the split was written for
SPEECHMOS_VERSION = "0.0.1.1"
PLCMOS_EMBED_ROUNDS = 15
PLCMOS_SEED = 23


def session_options():
    """onnxruntime options: one intra-op and one inter-op thread, always. The sessions are cached per process and
    shared by its threads, so their thread count must not depend on which caller made them first; and one thread
    gives the same sums on every path that scores a row (pool workers, Dask threads, ``lossbench rerun``)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return so


def _speechmos_file(*parts: str) -> str:
    import speechmos

    p = os.path.join(os.path.dirname(os.path.abspath(speechmos.__file__)), *parts)
    if not os.path.exists(p):
        raise ConfigError(f"{p} is missing: lossbench reads the model from speechmos {SPEECHMOS_VERSION} "
                          f"(pip install speechmos=={SPEECHMOS_VERSION})")
    return p


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lossbench"


def split_plcmos(path: str) -> tuple[bytes, bytes, list[str]]:
    """(audio-branch model, head model, the tensors between them) of a plcmos_v2 ONNX file.

    The split is cached beside the user's other caches, keyed by the file's hash, so that worker processes
    load it without importing ``onnx`` (a second per worker); a cache that cannot be written is skipped.
    """
    import hashlib

    data = Path(path).read_bytes()
    key = hashlib.sha256(data).hexdigest()[:16]
    d = _cache_dir()
    files = [d / f"plcmos_v2_{key}_{part}" for part in ("audio.onnx", "head.onnx", "boundary.txt")]
    if all(f.exists() for f in files):
        return files[0].read_bytes(), files[1].read_bytes(), files[2].read_text().split()
    audio, head, boundary = _split(path, data)
    try:
        d.mkdir(parents=True, exist_ok=True)
        for f, body in zip(files, (audio, head, " ".join(boundary).encode())):
            tmp = f.with_name(f.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(body)
            os.replace(tmp, f)
    except OSError:
        pass
    return audio, head, boundary


def _split(path: str, data: bytes) -> tuple[bytes, bytes, list[str]]:
    import onnx

    model = onnx.load_from_string(data)
    g = model.graph
    names = [i.name for i in g.input]
    if names != ["degraded_audio", "rater_embed"] or [o.name for o in g.output] != ["plcmos"]:
        raise ConfigError(f"{path} has inputs {names} and outputs {[o.name for o in g.output]}, not the "
                          f"plcmos_v2 graph of speechmos {SPEECHMOS_VERSION} (degraded_audio, rater_embed -> "
                          f"plcmos) that lossbench splits")
    inits = {t.name for t in g.initializer}
    rater: set[str] = {"rater_embed"}
    head_nodes = []
    for node in g.node:  # topological order: a node depends on the embedding if any input does
        if any(i in rater for i in node.input):
            rater.update(node.output)
            head_nodes.append(node)
    produced_by_head = {o for n in head_nodes for o in n.output}
    boundary = sorted({i for n in head_nodes for i in n.input
                       if i and i not in rater and i not in inits and i not in produced_by_head})
    if not head_nodes or not boundary or len(head_nodes) > 40:
        raise ConfigError(f"{path}: the rater embedding does not enter a separable head; this is not the "
                          f"plcmos_v2 graph of speechmos {SPEECHMOS_VERSION}")
    ex = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model))
    audio = ex.extract_model(["degraded_audio"], boundary)
    head = ex.extract_model(boundary + ["rater_embed"], ["plcmos"])
    head.graph.output[0].type.tensor_type.ClearField("shape")  # one score per embedding row, not a scalar
    return audio.SerializeToString(), head.SerializeToString(), boundary


class FastPLCMOS:
    """PLCMOS v2 with the audio branch computed once per clip (see the module docstring)."""

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime as ort

        self.path = path or _speechmos_file("plcmos_models", "plcmos_v2.onnx")
        audio, head, self.boundary = split_plcmos(self.path)
        so = session_options()
        self.audio = ort.InferenceSession(audio, so, providers=["CPUExecutionProvider"])
        self.head = ort.InferenceSession(head, so, providers=["CPUExecutionProvider"])
        from speechmos.plcmos import PLCMOS

        self._features = PLCMOS.__new__(PLCMOS).stft_transform  # speechmos's own feature code (no session)

    def features(self, audio: np.ndarray) -> np.ndarray:
        return np.asarray(self._features(audio), dtype=np.float32)[np.newaxis, np.newaxis, ...]

    def score(self, audio: np.ndarray, embeds: np.ndarray) -> float:
        """Mean PLCMOS over the rater embeddings ``embeds`` (n, 64) for 16 kHz audio in [-1, 1]."""
        n = embeds.shape[0]
        parts = self.audio.run(self.boundary, {"degraded_audio": self.features(audio)})
        feeds = {name: np.repeat(v, n, axis=0) for name, v in zip(self.boundary, parts)}
        feeds["rater_embed"] = embeds.astype(np.float32)
        scores = self.head.run(None, feeds)[0].reshape(-1)
        return sum(float(v) for v in scores) / n  # summed in the order speechmos sums them


def prepare_plcmos() -> None:
    """Split (and cache) the PLCMOS model now, so that worker processes only load it; never raises."""
    try:
        split_plcmos(_speechmos_file("plcmos_models", "plcmos_v2.onnx"))
    except Exception:  # the metric reports its own error per clip
        pass


@locked_cache(1)
def _fast_plcmos() -> FastPLCMOS:
    return FastPLCMOS()


def _draw_plcmos_embeddings() -> np.ndarray:
    """The 15 rater embeddings speechmos draws per call (``np.random.seed(23)``, then 15 draws of (1, 64) from
    NumPy's global generator, which equal one draw of (15, 64)): drawn here from a RandomState of its own seeded
    the same way (the legacy global generator is a RandomState, so the streams are the same), touching no global
    state."""
    emb = np.random.RandomState(PLCMOS_SEED).normal(size=(PLCMOS_EMBED_ROUNDS, 64))
    emb.setflags(write=False)
    return emb


#: the rater embeddings, a constant drawn once at import (read-only): threads scoring at once share it
PLCMOS_EMBEDDINGS = _draw_plcmos_embeddings()


def plcmos_embeddings() -> np.ndarray:
    """The 15 rater embeddings (:data:`PLCMOS_EMBEDDINGS`, read-only)."""
    return PLCMOS_EMBEDDINGS


def plcmos(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """PLCMOS v2 (speechmos's model), non-intrusive; the rater embeddings seeded with 23 per call as in the
    reference implementation, so scores repeat."""
    est = _check_single(est)
    if sr != 16000:
        est = _resample(est, sr, 16000)
    if est.size < 16000:
        raise MetricUnavailable("too short for PLCMOS (needs >= 1 s)")
    return {"plcmos": _fast_plcmos().score(np.clip(est, -1, 1).astype(np.float32), plcmos_embeddings())}


#: speechmos's ``plcmos.run`` seeds NumPy's global generator: calls of it are serialised and the caller's state kept
_SPEECHMOS_GLOBAL_RNG = threading.Lock()


def plcmos_speechmos(est: np.ndarray, sr: int = 16000) -> float:
    """speechmos's own ``plcmos.run`` (the reference the fast path is tested and timed against). It draws from
    NumPy's global generator, so calls hold a lock and the caller's global random state is restored after."""
    from speechmos import plcmos as _pl

    with _SPEECHMOS_GLOBAL_RNG:
        state = np.random.get_state()
        np.random.seed(PLCMOS_SEED)
        try:
            return float(_pl.run(np.clip(est, -1, 1).astype(np.float32), sr)["plcmos"])
        finally:
            np.random.set_state(state)


@locked_cache(1)
def _dnsmos_model():
    """speechmos's DNSMOS object with its two sessions made under :func:`session_options`, installed as the
    one speechmos's ``dnsmos.run`` uses (its model files, no copy)."""
    import onnxruntime as ort
    from speechmos import dnsmos as _dn

    primary = _speechmos_file("dnsmos_models", "sig_bak_ovr.onnx")
    p808 = _speechmos_file("dnsmos_models", "model_v8.onnx")
    d = _dn.DNSMOS.__new__(_dn.DNSMOS)
    so = session_options()
    d.primary_model_path = primary
    d.onnx_sess = ort.InferenceSession(primary, so, providers=["CPUExecutionProvider"])
    d.p808_onnx_sess = ort.InferenceSession(p808, so, providers=["CPUExecutionProvider"])
    _dn.dnsmos = d
    return _dn


def dnsmos(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS P.835 (speechmos): overall, signal, background, and P.808 MOS."""
    est = _check_single(est)
    if sr != 16000:
        est = _resample(est, sr, 16000)
    if est.size < 16000:
        raise MetricUnavailable("too short for DNSMOS (needs >= 1 s)")
    out = _dnsmos_model().run(np.clip(est, -1, 1).astype(np.float32), 16000)
    return {
        "dnsmos_ovrl": float(out["ovrl_mos"]),
        "dnsmos_sig": float(out["sig_mos"]),
        "dnsmos_bak": float(out["bak_mos"]),
        "dnsmos_p808": float(out["p808_mos"]),
    }


#: the DistillMOS release (Microsoft, MIT) and the xls-r-sqa release its model classes come from; installed
#: with ``pip install --no-deps`` by ``make setup`` (their torchaudio requirement cannot load next to torch 2.13)
DISTILLMOS_VERSION = "0.9.1"
XLS_R_SQA_VERSION = "0.1.0"
DISTILLMOS_RATE = 16000
#: sha256 of ``distillmos/weights/distill_mos_v7.pt`` in the 0.9.1 wheel (checked when the model loads)
DISTILLMOS_SHA256 = "b18b3ac60227267cfb91e5d00ce22cc7b73716fd92f269484da1446e27031a40"


@locked_cache(1)
def _distillmos_model():
    """DistillMOS's ConvTransformerSQAModel with its shipped weights (``distill_mos_v7.pt`` in the wheel).

    ``distillmos.sqa`` imports torchaudio at its top for its command-line file reader (``torchaudio.load`` and
    ``Resample``), which lossbench never calls; the model itself is plain torch. The torchaudio wheels on the
    index cannot load next to torch 2.13, so the import runs with an empty module object standing in for it,
    removed again at once: a use of it would fail with an AttributeError, not give numbers.
    """
    import sys
    import types

    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ConfigError(f"DistillMOS needs torch: {exc}") from exc
    had = sys.modules.get("torchaudio")
    if had is None:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        from distillmos import sqa
    except ImportError as exc:
        raise ConfigError(f"DistillMOS is not installed ({exc}); 'make setup' installs distillmos=={DISTILLMOS_VERSION} "
                          f"and xls-r-sqa=={XLS_R_SQA_VERSION}") from exc
    finally:
        if had is None:
            sys.modules.pop("torchaudio", None)
    import contextlib
    import hashlib
    import io

    weights = Path(sqa.DEFAULT_WEIGHTS_CHKPT)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else "missing"
    if digest != DISTILLMOS_SHA256:
        raise ConfigError(f"DistillMOS weights {weights}: sha256 {digest[:16]}, not the pinned {DISTILLMOS_SHA256[:16]} "
                          f"of distillmos {DISTILLMOS_VERSION}; 'make setup' reinstalls it")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded its weights from
        model = sqa.ConvTransformerSQAModel(load_weights=True)
    model.eval()
    return model, torch


def distillmos(est: np.ndarray, ref: np.ndarray, sr: int) -> dict[str, float]:
    """DistillMOS (Stahl & Gamper 2025), non-intrusive: the package's model on the 16 kHz estimate, as its
    README calls it (``model(x)`` on a [1, samples] tensor; the model peak-normalises and averages 7.68 s
    crops itself)."""
    est = _check_single(est)
    if sr != DISTILLMOS_RATE:
        est = _resample(est, sr, DISTILLMOS_RATE)
    if est.size < DISTILLMOS_RATE:
        raise MetricUnavailable("too short for DistillMOS (needs >= 1 s)")
    model, torch = _distillmos_model()
    with torch.inference_mode():
        v = float(model(torch.from_numpy(np.clip(est, -1, 1).astype(np.float32))[None]).reshape(-1)[0])
    return {"distillmos": v}
