"""Fast sampling and closed-form statistics of finite Markov loss chains.

Every Markov loss model in lossbench is a chain over K states with a
transition matrix ``P`` (K x K) and a per-state loss probability ``e`` (K).
Packet t is lost with probability ``e[x_t]``; the chain then moves on with
``P[x_t]``. The first state is drawn from the stationary distribution, so a
sample is a stationary sample from its first packet.

Sampling is vectorised without a per-packet Python loop:

1. the chain is split into sojourns: the time spent in state s before
   leaving is geometric with success probability ``1 - P[s, s]``;
2. the sequence of visited states (the embedded jump chain) is sampled by a
   blocked scan over per-step transition maps: step t is a map
   ``f_t: state -> next state`` fixed by one uniform draw, maps are composed
   block by block with array operations, block start states are found by a
   (recursive) scan over block maps, then every state within blocks;
3. ``np.repeat`` expands the visits into per-packet states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossbench.errors import ConfigError


@dataclass(frozen=True)
class ChainStats:
    """Closed-form statistics of a stationary loss process.

    Attributes:
        loss_rate: long-run fraction of lost packets.
        mean_burst: mean length of a run of consecutive losses (packets).
        mean_gap: mean length of a run of consecutive received packets.
        p_loss_given_loss: P(packet t lost | packet t-1 lost).
    """

    loss_rate: float
    mean_burst: float
    mean_gap: float
    p_loss_given_loss: float


def validate_chain(P: np.ndarray, e: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    K = e.shape[0]
    if P.shape != (K, K):
        raise ConfigError(f"{what}: transition matrix must be {K}x{K}, got {P.shape}")
    if (P < -1e-12).any() or (P > 1 + 1e-12).any():
        bad = P[(P < 0) | (P > 1)][0]
        raise ConfigError(f"{what}: transition probabilities must lie in [0, 1], got {bad:g}")
    rows = P.sum(axis=1)
    if not np.allclose(rows, 1.0, atol=1e-9):
        i = int(np.argmax(np.abs(rows - 1)))
        raise ConfigError(
            f"{what}: transition probabilities out of state {i + 1} sum to {rows[i]:.6g}, must sum to 1"
        )
    if (e < 0).any() or (e > 1).any():
        raise ConfigError(f"{what}: loss probabilities must lie in [0, 1], got {e.tolist()}")
    return np.clip(P, 0.0, 1.0), e


def stationary(P: np.ndarray) -> np.ndarray:
    """Stationary distribution pi (pi P = pi, sum pi = 1) of an irreducible chain.

    For a reducible chain this returns the least-squares solution, which is
    one valid stationary distribution.
    """
    K = P.shape[0]
    if K == 1:
        return np.ones(1)
    A = np.vstack([P.T - np.eye(K), np.ones((1, K))])
    b = np.zeros(K + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def chain_stats(P: np.ndarray, e: np.ndarray) -> ChainStats:
    """Closed-form statistics of the stationary chain (P, e).

    With ``pi`` the stationary distribution and ``q = 1 - e``:
    P(lost) = pi.e, P(lost, lost) = (pi*e) P e, P(received, lost) = (pi*q) P e.
    A burst starts at each (received, lost) pair, so mean burst =
    P(lost) / P(received, lost); gaps likewise.
    """
    pi = stationary(P)
    q = 1.0 - e
    p1 = float(pi @ e)
    p11 = float((pi * e) @ P @ e)
    p01 = float((pi * q) @ P @ e)
    p10 = float((pi * e) @ P @ q)
    mean_burst = p1 / p01 if p01 > 0 else float("inf") if p1 > 0 else 0.0
    mean_gap = (1 - p1) / p10 if p10 > 0 else float("inf") if p1 < 1 else 0.0
    cond = p11 / p1 if p1 > 0 else float("nan")
    return ChainStats(loss_rate=p1, mean_burst=mean_burst, mean_gap=mean_gap, p_loss_given_loss=cond)


def _run_maps(f: np.ndarray, x0: int) -> np.ndarray:
    """States x[0..m] with x[0] = x0 and x[t+1] = f[t, x[t]].

    Args:
        f: int array (m, K) of per-step transition maps.
        x0: starting state.
    Returns:
        int8 array of m + 1 states.
    """
    m, K = f.shape
    if m <= 2048:
        out = np.empty(m + 1, dtype=np.int8)
        out[0] = x = x0
        rows = f.tolist()
        for t in range(m):
            x = rows[t][x]
            out[t + 1] = x
        return out
    B = int(min(4096, max(64, np.sqrt(m))))
    nb = -(-m // B)
    pad = nb * B - m
    if pad:
        ident = np.broadcast_to(np.arange(K, dtype=f.dtype), (pad, K))
        f = np.concatenate([f, ident])
    fb = f.reshape(nb, B, K)
    comp = np.broadcast_to(np.arange(K, dtype=f.dtype), (nb, K)).copy()
    for j in range(B):
        comp = np.take_along_axis(fb[:, j, :], comp, axis=1)
    starts = _run_maps(comp, x0)
    blocks = np.arange(nb)
    cur = starts[:-1].astype(np.intp)
    states = np.empty((nb, B), dtype=np.int8)
    for j in range(B):
        cur = fb[blocks, j, cur]
        states[:, j] = cur
    out = np.empty(m + 1, dtype=np.int8)
    out[0] = x0
    out[1:] = states.ravel()[:m]
    return out


def sample_states(P: np.ndarray, n: int, rng: np.random.Generator, x0: int | None = None) -> np.ndarray:
    """Sample n consecutive states of the chain P (int8[n]).

    Args:
        P: K x K transition matrix.
        n: number of steps.
        rng: random generator.
        x0: first state; drawn from the stationary distribution when None.
    """
    K = P.shape[0]
    if x0 is None:
        x0 = int(rng.choice(K, p=stationary(P))) if K > 1 else 0
    if n <= 0:
        return np.zeros(0, dtype=np.int8)
    if K == 1:
        return np.zeros(n, dtype=np.int8)
    stay = np.diag(P).copy()
    leave = 1.0 - stay
    absorbing = leave <= 1e-15
    # jump-chain transition matrix: leave state s, go to j != s
    Q = P.copy()
    np.fill_diagonal(Q, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        Q = np.where(leave[:, None] > 1e-15, Q / np.where(leave > 1e-15, leave, 1.0)[:, None], 0.0)
    Q[absorbing, np.arange(K)[absorbing]] = 1.0
    cumQ = np.cumsum(Q, axis=1)
    cumQ[:, -1] = 1.0 + 1e-12
    pi = stationary(P)
    jump_rate = float(pi @ leave)
    pieces: list[np.ndarray] = []
    total = 0
    cur = int(x0)
    while total < n:
        need = n - total
        m = int(need * jump_rate * 1.1) + 64 if jump_rate > 0 else 1
        m = min(m, need)
        u = rng.random(m)
        # f[t, k] = next state from k given uniform u[t]
        f = np.empty((m, K), dtype=np.int8)
        for k in range(K):
            f[:, k] = np.searchsorted(cumQ[k], u, side="right")
        visits = _run_maps(f, cur)  # m + 1 states; the last is the next start
        seq = visits[:-1]
        durs = np.empty(m, dtype=np.int64)
        for s in range(K):
            mask = seq == s
            cnt = int(mask.sum())
            if not cnt:
                continue
            if absorbing[s]:
                durs[mask] = need
            else:
                durs[mask] = rng.geometric(leave[s], size=cnt)
        cs = np.cumsum(durs)
        last = int(np.searchsorted(cs, need, side="left"))
        if last < m:  # this chunk covers what is needed
            seq = seq[: last + 1]
            durs = durs[: last + 1]
        pieces.append(np.repeat(seq, durs))
        total += int(durs.sum())
        cur = int(visits[-1])
    return np.concatenate(pieces)[:n] if len(pieces) > 1 else pieces[0][:n]


def emit(states: np.ndarray, e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Loss flags (bool[n]) for a state sequence under loss probabilities e."""
    if np.all((e == 0) | (e == 1)):
        return (e > 0.5)[states]
    return rng.random(states.shape[0]) < e[states]
