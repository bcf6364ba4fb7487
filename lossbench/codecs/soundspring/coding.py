"""SoundSpring's sender-side entropy coding under the dependency pattern Phi (paper §III-B).

::

    one group of slices (GoS) = T_G frames x K layers of RVQ tokens
    G-axis: S slices per GoS, periodic in time (slice l holds frames t with t mod S = l)
    layer axis: slice j = 0 holds the coarse layers 1..N_C, slices j >= 1 the
                fine layer groups (bounds, e.g. 3 | 6 | 12 | 24)

    coarse slices S_{l,0}:      10 bits per token, no model (guideline 2)
    key slices S_{l*,j}:        coded under the MLM's PMFs given the GoS's coarse tokens only
    non-key slices S_{l,j}:     given the coarse tokens and the key slices' groups 1..j

Tokens within a slice are coded in parallel from one forward pass (guideline
3), so a GoS needs 1 + J forward passes at the sender and the same at the
receiver. The model runs single-threaded here so that sender and receiver
compute bit-identical PMFs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from lossbench.codecs.entropy import decode_categorical, encode_categorical
from lossbench.codecs.rvq import pack_indices, unpack_indices
from lossbench.codecs.soundspring.mlm import ABSENT, MaskedTokenLM
from lossbench.errors import ConfigError


@dataclass(frozen=True)
class Slicing:
    """The slice grid of one GoS."""

    frames: int  # T_G
    slices: int  # S
    bounds: tuple[int, ...] = (3, 6, 12, 24)  # N_1 = N_C, ..., N_{J+1}
    key: int = 0  # l*

    def __post_init__(self) -> None:
        if not 1 <= self.slices <= self.frames:
            raise ConfigError(f"slices must lie in 1..frames ({self.frames}), got {self.slices}")
        if list(self.bounds) != sorted(set(self.bounds)) or self.bounds[0] < 1:
            raise ConfigError(f"layer bounds must increase strictly from >= 1, got {self.bounds}")
        if not 0 <= self.key < self.slices:
            raise ConfigError(f"key slice must lie in 0..{self.slices - 1}, got {self.key}")

    @property
    def n_coarse(self) -> int:
        return self.bounds[0]

    def frames_of(self, l: int, T: int | None = None) -> np.ndarray:
        return np.arange(l, T or self.frames, self.slices)

    def layers_of(self, j: int, K: int) -> np.ndarray:
        """Layers (0-based) of layer group j (0 = coarse) among the first K."""
        lo = 0 if j == 0 else self.bounds[j - 1]
        return np.arange(lo, min(self.bounds[j], K))

    def groups(self, K: int) -> list[int]:
        """Layer groups that hold at least one of the first K layers."""
        return [j for j in range(len(self.bounds)) if self.layers_of(j, K).size]


@contextlib.contextmanager
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _pmfs(model: MaskedTokenLM, visible: np.ndarray, K: int) -> np.ndarray:
    """PMFs (T, K, V) given the visible tokens (T, K; -1 = masked)."""
    cfg = model.cfg
    inp = np.where(visible >= 0, visible, cfg.mask_id)
    with torch.no_grad(), _single_thread():
        logits = model(torch.from_numpy(inp.astype(np.int64)).unsqueeze(0))[0]
        return torch.softmax(logits.double(), -1).numpy()


def slice_keys(sl: Slicing, K: int, T: int) -> list[tuple[int, int]]:
    """(l, j) of every non-empty slice of a GoS, in coding order: coarse, key, non-key."""
    ls = [l for l in range(sl.slices) if sl.frames_of(l, T).size]
    out = [(l, 0) for l in ls]
    for j in sl.groups(K)[1:]:
        out.append((sl.key, j))
    for j in sl.groups(K)[1:]:
        out += [(l, j) for l in ls if l != sl.key]
    return out


def encode_gos(model: MaskedTokenLM, tokens: np.ndarray, sl: Slicing) -> dict[tuple[int, int], bytes]:
    """Payload of every slice of one GoS; ``tokens`` (T <= T_G, K) int."""
    T, K = tokens.shape
    out: dict[tuple[int, int], bytes] = {}
    vis = np.full((T, K), -1, dtype=np.int64)
    coarse = sl.layers_of(0, K)
    vis[:, coarse] = tokens[:, coarse]
    for l in range(sl.slices):
        f = sl.frames_of(l, T)
        if f.size:
            out[(l, 0)] = pack_indices(tokens[np.ix_(f, coarse)].ravel())
    fine_groups = sl.groups(K)[1:]
    if not fine_groups:
        return out
    key_f = sl.frames_of(sl.key, T)
    p = _pmfs(model, vis, K)  # key slices: coarse only
    for j in fine_groups:
        lay = sl.layers_of(j, K)
        out[(sl.key, j)] = encode_categorical(tokens[np.ix_(key_f, lay)].ravel(), p[np.ix_(key_f, lay)].reshape(-1, p.shape[-1]))
    for j in fine_groups:
        v = vis.copy()
        upto = np.arange(sl.n_coarse, sl.layers_of(j, K)[-1] + 1)
        v[np.ix_(key_f, upto)] = tokens[np.ix_(key_f, upto)]
        p = _pmfs(model, v, K)
        lay = sl.layers_of(j, K)
        for l in range(sl.slices):
            f = sl.frames_of(l, T)
            if l == sl.key or not f.size:
                continue
            out[(l, j)] = encode_categorical(tokens[np.ix_(f, lay)].ravel(), p[np.ix_(f, lay)].reshape(-1, p.shape[-1]))
    return out


def decode_gos(model: MaskedTokenLM, payloads: dict[tuple[int, int], bytes | None], sl: Slicing, T: int, K: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (T, K) and their state: 'R' received, 'L' lost, 'I' invalid (a condition or lower layer missing).

    Slices are decoded only when their condition slices arrived; a payload that
    fails to parse counts as lost.
    """
    from lossbench.codecs.fec import PayloadError

    toks = np.full((T, K), ABSENT, dtype=np.int64)
    state = np.full((T, K), "L", dtype="<U1")
    coarse = sl.layers_of(0, K)
    ok_coarse = True
    for l in range(sl.slices):
        f = sl.frames_of(l, T)
        if not f.size:
            continue
        data = payloads.get((l, 0))
        try:
            if data is None:
                raise PayloadError("lost")
            toks[np.ix_(f, coarse)] = unpack_indices(data, f.size * coarse.size).reshape(f.size, coarse.size)
            state[np.ix_(f, coarse)] = "R"
        except (PayloadError, ValueError):
            ok_coarse = False
    fine_groups = sl.groups(K)[1:]
    fine = np.arange(sl.n_coarse, K)
    if not fine_groups:
        return toks, state
    if not ok_coarse:  # every fine slice of the GoS is conditioned on all its coarse tokens
        state[:, fine] = "I"
        return toks, state
    vis = np.where(state == "R", toks, -1)
    key_f = sl.frames_of(sl.key, T)
    p = _pmfs(model, vis, K)
    key_ok = {}
    for j in fine_groups:
        lay = sl.layers_of(j, K)
        try:
            data = payloads.get((sl.key, j))
            if data is None:
                raise PayloadError("lost")
            toks[np.ix_(key_f, lay)] = decode_categorical(data, p[np.ix_(key_f, lay)].reshape(-1, p.shape[-1])).reshape(key_f.size, lay.size)
            state[np.ix_(key_f, lay)] = "R"
            key_ok[j] = True
        except PayloadError:
            key_ok[j] = False
    for j in fine_groups:
        lay = sl.layers_of(j, K)
        if not all(key_ok[i] for i in fine_groups if i <= j):
            for l in range(sl.slices):  # condition (key) slices missing: invalid
                if l != sl.key:
                    state[np.ix_(sl.frames_of(l, T), lay)] = "I"
            continue
        v = vis.copy()
        upto = np.arange(sl.n_coarse, lay[-1] + 1)
        v[np.ix_(key_f, upto)] = toks[np.ix_(key_f, upto)]
        p = _pmfs(model, v, K)
        for l in range(sl.slices):
            f = sl.frames_of(l, T)
            if l == sl.key or not f.size:
                continue
            try:
                data = payloads.get((l, j))
                if data is None:
                    raise PayloadError("lost")
                toks[np.ix_(f, lay)] = decode_categorical(data, p[np.ix_(f, lay)].reshape(-1, p.shape[-1])).reshape(f.size, lay.size)
                state[np.ix_(f, lay)] = "R"
            except PayloadError:
                pass
    # RVQ causality: a layer above a missing one in the same frame is invalid
    for t in range(T):
        bad = np.flatnonzero(state[t] != "R")
        if bad.size:
            above = np.arange(bad[0] + 1, K)
            state[t, above[state[t, above] == "R"]] = "I"
    return toks, state
