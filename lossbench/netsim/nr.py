"""``nr:``: a 5G NR link, built on Sionna: fading -> link adaptation -> block errors -> HARQ, per packet.

Each packet is one transport block sent in one slot at its send time. Per packet:

1. **Fading.** The channel at the slot (and at the feedback slot before it,
   and at each retransmission) is Sionna's 3GPP TR 38.901 tapped-delay-line
   model (``TDL-A`` ... ``TDL-E``: its tabulated power-delay profiles, K
   factors and its sum-of-sinusoids Doppler model, Sionna's
   ``sionna.phy.channel.tr38901.TDL``), evaluated at the slot times the link
   needs (Sionna's own ``TDL.__call__`` samples a uniform grid from t = 0;
   the equations and random draws here are the same, drawn from the
   channel's seeded generator). ``rayleigh`` and ``rician`` are one-tap
   (flat) versions of the same model, ``awgn`` has no fading. The frequency
   response is taken per PRB over the allocation, SISO.
2. **Transport block.** The packet's bits (payload and headers, as the
   simulator gives them) must fit the TB: for each MCS the allocation is the
   fewest PRBs whose TB size (Sionna's TS 38.214 ``calculate_tb_size``,
   13 OFDM symbols, one DMRS symbol) holds it, up to ``prbs``; its code-block
   size sets the BLER curve.
3. **Effective SINR.** Per-PRB SINR = mean SNR x |H|^2, mapped by EESM with
   Sionna's beta per MCS.
4. **Link adaptation.** ``illa``: the highest MCS whose BLER (Sionna's 5G NR
   BLER tables, ``PHYAbstraction.get_bler``) at the effective SINR of the
   feedback slot (``feedback_slots`` earlier) is at most ``bler_target``;
   ``olla``: the same from the feedback SINR minus an offset that rises by
   ``olla_step_db`` on a first-attempt NACK and falls by step x
   target / (1 - target) on an ACK (Sionna's ``OuterLoopLinkAdaptation`` rule,
   run as a loop over packets); ``fixed``: always ``mcs``.
5. **Block error and HARQ.** The TB fails with the BLER at its effective SINR.
   A failed TB is resent every ``rtt_ms`` up to ``harq`` transmissions in all,
   each at the channel of its own slot, combining ``chase`` (SINRs add) or
   ``ir`` (incremental redundancy: mutual information adds, SINR = 2^sum - 1).
   A packet delivered at transmission k arrives (k - 1) x RTT late; one that
   fails all of them is lost.

``preset=glaris`` is Glaris's wireless setting (§IV-A): SISO at 5.3 GHz, mean
SNR 8 dB, ILLA to BLER < 0.1 from the previous slot's feedback, one frame per
slot, no retransmission. The paper's COST2100 indoor CSI is not obtainable
here; the preset uses TDL-A with a 30 ns delay spread (TR 38.901's
"short" indoor value) at 3 km/h, the closest standard model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from lossbench.concurrency import locked_cache
from lossbench.core import LossTrace
from lossbench.errors import ConfigError, choices
from lossbench.netsim.models import LossModel, _check_n

PROFILES = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E", "rayleigh", "rician", "awgn")
LINK_ADAPTATION = ("illa", "olla", "fixed")
COMBINING = ("chase", "ir")
SLOTS_MS = (1.0, 0.5, 0.25, 0.125)  # 15, 30, 60, 120 kHz subcarrier spacing
MCS_TABLES = (1, 2)  # those with both BLER tables and EESM betas in Sionna 2.2.0
#: the SINR grid (dB) of the BLER look-up; mean SNRs are allowed inside it
SNR_GRID = (-15.0, 45.0, 0.05)
SNR_RANGE = (-10.0, 40.0)
SPEED_OF_LIGHT = 299_792_458.0
NUM_SINUSOIDS = 20
OFDM_SYMBOLS, DMRS_PER_PRB = 13, 12
PRESETS = {
    "glaris": dict(snr_db=8.0, carrier_ghz=5.3, profile="TDL-A", delay_spread_ns=30.0, speed_kmh=3.0, la="illa",
                   bler_target=0.1, feedback_slots=1, harq=1),
}


@locked_cache(1)
def _sionna() -> dict[str, Any]:
    """Sionna's pieces, imported (about 8 s) only when an ``nr:`` channel is used."""
    try:
        import torch
        from sionna.phy.channel.tr38901 import TDL
        from sionna.phy.nr.utils import calculate_tb_size, decode_mcs_index
        from sionna.sys import PHYAbstraction
        from sionna.sys.effective_sinr import EESM
    except ImportError as exc:
        from lossbench.extras import missing_extra

        raise missing_extra(exc, "the nr: channel (Sionna)") from None
    return {"torch": torch, "TDL": TDL, "tb_size": calculate_tb_size, "decode_mcs": decode_mcs_index,
            "phy": PHYAbstraction(), "beta": EESM().beta_tensor.cpu().numpy()}


@dataclass(frozen=True)
class NrOutcome:
    """Per packet: lost, extra delay (s; 0 where lost), MCS, transmissions used, first-attempt failure, the
    first transmission's effective SINR (dB)."""

    lost: np.ndarray
    delay_s: np.ndarray
    mcs: np.ndarray
    attempts: np.ndarray
    first_fail: np.ndarray
    sinr_db: np.ndarray

    @property
    def first_attempt_bler(self) -> float:
        return float(self.first_fail.mean()) if self.first_fail.size else float("nan")


@dataclass(frozen=True)
class NrLink(LossModel):
    """A 5G NR link (see the module docstring); every parameter has a default."""

    snr_db: float = 8.0
    snr_end_db: float | None = None  # time-varying: the mean SNR moves linearly to this by ramp_s
    ramp_s: float = 10.0
    speed_kmh: float = 3.0
    carrier_ghz: float = 3.5
    profile: str = "TDL-A"
    delay_spread_ns: float = 30.0
    k_db: float = 10.0  # rician only
    mcs_table: int = 1
    channel: str = "pdsch"
    slot_ms: float = 0.5
    prbs: int = 51
    la: str = "illa"
    mcs: int = 9  # la=fixed
    bler_target: float = 0.1
    feedback_slots: int = 1
    olla_step_db: float = 1.0
    harq: int = 1
    rtt_ms: float = 8.0
    combining: str = "chase"
    packet_bytes: int = 100  # the packet size of sample() and process(), which are not given packets
    preset: str | None = None
    name = "nr"

    def __post_init__(self) -> None:
        def bad(what: str, v: Any, allowed: str) -> ConfigError:
            return ConfigError(f"nr: {what} must be {allowed}, got {v!r}")

        for k in ("snr_db", "ramp_s", "speed_kmh", "carrier_ghz", "delay_spread_ns", "k_db", "slot_ms",
                  "bler_target", "olla_step_db", "rtt_ms"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(k, v, "a finite number")
        lo, hi = SNR_RANGE
        for k in ("snr_db", "snr_end_db"):
            v = getattr(self, k)
            if v is not None and not lo <= v <= hi:
                raise bad(k, v, f"in [{lo:g}, {hi:g}] dB (the range of Sionna's BLER tables)")
        if not 0 <= self.speed_kmh <= 500:
            raise bad("speed_kmh", self.speed_kmh, "in [0, 500] km/h")
        if not 0.4 <= self.carrier_ghz <= 100:
            raise bad("carrier_ghz", self.carrier_ghz, "in [0.4, 100] GHz (TR 38.901)")
        if self.profile not in PROFILES:
            raise ConfigError(f"nr: unknown profile {self.profile!r}; valid: {', '.join(PROFILES)}")
        if not 0 < self.delay_spread_ns <= 5000:
            raise bad("delay_spread_ns", self.delay_spread_ns, "in (0, 5000] ns")
        if not -10 <= self.k_db <= 30:
            raise bad("k_db", self.k_db, "in [-10, 30] dB")
        if self.mcs_table not in MCS_TABLES:
            raise ConfigError(f"nr: unknown MCS table {self.mcs_table!r}; valid: {', '.join(map(str, MCS_TABLES))} "
                              "(the tables with Sionna BLER curves and EESM betas)")
        if self.channel not in ("pdsch", "pusch"):
            raise ConfigError(f"nr: channel must be 'pdsch' or 'pusch', got {self.channel!r}")
        if self.slot_ms not in SLOTS_MS:
            raise bad("slot_ms", self.slot_ms, f"one of {', '.join(f'{s:g}' for s in SLOTS_MS)} ms")
        for k, lo_, hi_ in (("prbs", 1, 275), ("harq", 1, 16), ("feedback_slots", 0, 1000), ("packet_bytes", 1, 10**6)):
            v = getattr(self, k)
            if isinstance(v, bool) or int(v) != v or not lo_ <= v <= hi_:
                raise bad(k, v, f"an integer in [{lo_}, {hi_}]")
        if self.la not in LINK_ADAPTATION:
            raise ConfigError(f"nr: unknown link adaptation {self.la!r}; valid: {', '.join(LINK_ADAPTATION)}")
        if self.combining not in COMBINING:
            raise ConfigError(f"nr: unknown HARQ combining {self.combining!r}; valid: {', '.join(COMBINING)}")
        if not 0 < self.bler_target < 1:
            raise bad("bler_target", self.bler_target, "in (0, 1)")
        if not self.olla_step_db > 0:
            raise bad("olla_step_db", self.olla_step_db, "> 0 dB")
        if not self.rtt_ms >= self.slot_ms:
            raise bad("rtt_ms", self.rtt_ms, f">= the slot ({self.slot_ms:g} ms)")
        if not self.ramp_s > 0:
            raise bad("ramp_s", self.ramp_s, "> 0 s")
        if int(self.mcs) != self.mcs or self.mcs < 0:
            raise bad("mcs", self.mcs, "an integer >= 0")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> NrLink:
        if preset not in PRESETS:
            raise ConfigError(f"nr: unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides, "preset": preset})

    # ----------------------------------------------------------------- LossModel

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def sample(self, n: int, rng: np.random.Generator, slot_s: float = 0.02) -> LossTrace:
        n = _check_n(n)
        o = self.outcomes(np.arange(n) * slot_s, np.full(n, self.packet_bytes), rng)
        return self._trace(o.lost, slot_s)

    def process(self, rng: np.random.Generator):
        return _NrProcess(self, rng)

    def outcomes(self, send_s: np.ndarray, sizes_bytes: np.ndarray, rng: np.random.Generator) -> NrOutcome:
        """Loss and extra delay of packets of ``sizes_bytes`` sent at ``send_s``, in one vectorised pass."""
        return _NrRun(self, rng).run(np.asarray(send_s, float), np.asarray(sizes_bytes, np.int64))

    # ----------------------------------------------------------------- helpers

    @property
    def doppler_hz(self) -> float:
        return self.speed_kmh / 3.6 / SPEED_OF_LIGHT * self.carrier_ghz * 1e9

    @property
    def scs_hz(self) -> float:
        return 15e3 * (1.0 / self.slot_ms)

    def snr_at(self, t: np.ndarray) -> np.ndarray:
        if self.snr_end_db is None:
            return np.full(np.shape(t), float(self.snr_db))
        f = np.clip(np.asarray(t) / self.ramp_s, 0.0, 1.0)
        return self.snr_db + f * (self.snr_end_db - self.snr_db)


class Fading:
    """Sionna's TDL (or a one-tap Rayleigh / Rician) channel, ``batch`` independent realisations, at any times.

    ``taps(t)`` gives complex[batch, len(t), paths] tap gains; ``prb_gain(t, prbs)`` |H|^2 per PRB. Mean power is
    one (the profiles are normalised).
    """

    def __init__(self, link: NrLink, rng: np.random.Generator, batch: int = 1) -> None:
        self.flat = link.profile in ("rayleigh", "rician", "awgn")
        self.awgn = link.profile == "awgn"
        los_angle = math.acos(0.7)  # Sionna's TDL default angle of arrival of the line of sight
        if link.profile.startswith("TDL"):
            tdl = _sionna()["TDL"](link.profile[-1], delay_spread=link.delay_spread_ns * 1e-9,
                                   carrier_frequency=link.carrier_ghz * 1e9)
            powers = tdl._mean_powers.real.cpu().numpy().astype(np.float64)
            delays = (tdl._delays * (tdl._delay_spread if tdl._scale_delays else 1e-9)).cpu().numpy().astype(float)
            los = bool(tdl._los)
            los_power = float(tdl._los_power.real) if los else 0.0
        else:
            k = 10 ** (link.k_db / 10) if link.profile == "rician" else 0.0
            los = link.profile == "rician"
            powers, delays = np.array([1.0 / (1.0 + k)]), np.array([0.0])
            los_power = k / (1.0 + k)
        self.powers, self.delays, self.los, self.los_power = powers, delays, los, los_power
        p, n = powers.size, NUM_SINUSOIDS
        self.omega = 2 * math.pi * link.doppler_hz
        # Sionna TDL's draws (Eq. (6)-(7), (11) of its references): per realisation and tap, per sinusoid
        theta = rng.uniform(-math.pi / n, math.pi / n, (batch, p, n))
        alpha = 2 * math.pi / n * np.arange(1, n + 1) + theta
        self.wcos = self.omega * np.cos(alpha)  # [batch, p, n]
        self.phi = rng.uniform(-math.pi, math.pi, (batch, p, n))
        self.phi0 = rng.uniform(-math.pi, math.pi, (batch,))
        self.wlos = self.omega * math.cos(los_angle)
        self.batch = batch
        self.scs = link.scs_hz

    def taps(self, t: np.ndarray, offsets_s: tuple[float, ...] = (0.0,)) -> np.ndarray:
        """complex[len(offsets), batch, len(t), paths]: the tap gains at t + each offset. The sinusoids are
        evaluated once at t; a time offset d multiplies each by exp(j w d) (one matrix product, no more
        exponentials), which is what makes the feedback slot next to each transmission cheap."""
        t = np.asarray(t, float)
        k = len(offsets_s)
        if self.awgn:
            return np.ones((k, self.batch, t.size, 1), np.complex64)
        # the phase in float64 (w t reaches 1e5 rad over an hour), the exponentials in complex64
        arg = self.wcos[:, None, :, :] * t[None, :, None, None]
        arg += self.phi[:, None, :, :]
        np.remainder(arg, 2 * math.pi, out=arg)
        a32 = arg.astype(np.float32)
        e = np.empty(a32.shape, np.complex64)  # [b, T, p, n]
        e.real = np.cos(a32)
        e.imag = np.sin(a32)
        d = np.asarray(offsets_s, float)
        c = np.exp(1j * self.wcos[..., None] * d).astype(np.complex64)  # [b, p, n, k]
        h = np.einsum("btpn,bpnk->kbtp", e, c, optimize=True)
        h *= (np.sqrt(self.powers) / math.sqrt(NUM_SINUSOIDS)).astype(np.float32)
        if self.los:
            tt = t[None, None, :] + d[:, None, None]  # [k, 1, T]
            spec = np.exp(1j * (self.wlos * tt + self.phi0[None, :, None])) * math.sqrt(self.los_power)
            h[..., 0] += spec.astype(np.complex64)
        return h

    def prb_gain(self, t: np.ndarray, n_prb: int, offsets_s: tuple[float, ...] = (0.0,)) -> np.ndarray:
        """float32[len(offsets), batch, len(t), n_prb]: |H|^2 per PRB (one column when the channel is flat)."""
        h = self.taps(t, offsets_s)
        if self.flat:
            return (np.abs(h[..., 0]) ** 2).astype(np.float32)[..., None]
        f = (np.arange(n_prb) + 0.5) * 12 * self.scs
        steer = np.exp(-2j * math.pi * self.delays[:, None] * f[None, :]).astype(np.complex64)  # [p, prb]
        return (np.abs(h @ steer) ** 2).astype(np.float32)


@locked_cache(64)
def _tables(mcs_table: int, channel: str, prbs: int, bits: tuple[int, ...], bler_target: float):
    """For each packet size (bits) and MCS: PRBs needed (0: does not fit), the BLER curve on SNR_GRID, and the
    lowest SINR (dB) meeting ``bler_target`` (inf: never)."""
    s = _sionna()
    torch = s["torch"]
    pusch = channel == "pusch"
    valid = []
    for m in range(32):
        try:
            s["decode_mcs"](torch.tensor(m), table_index=mcs_table, is_pusch=pusch, check_index_validity=True)
            valid.append(m)
        except (ValueError, AssertionError, RuntimeError, IndexError):
            continue
    mcs = torch.tensor(valid)
    n_m = len(valid)
    qm, r = s["decode_mcs"](mcs, table_index=mcs_table, is_pusch=pusch)
    m2 = mcs.reshape(-1, 1).expand(n_m, prbs)
    prb = torch.arange(1, prbs + 1).reshape(1, -1).expand(n_m, prbs)
    tb, cbs, _ = s["tb_size"](qm.reshape(-1, 1).expand(n_m, prbs), r.reshape(-1, 1).expand(n_m, prbs),
                               num_prbs=prb, num_ofdm_symbols=OFDM_SYMBOLS, num_dmrs_per_prb=DMRS_PER_PRB,
                               return_cw_length=False)[:3]
    tb, cbs = tb.numpy(), cbs.numpy()
    b = np.asarray(bits)[:, None, None]
    fits = tb[None] >= b  # [u, m, prb]
    need = np.where(fits.any(-1), fits.argmax(-1) + 1, 0)  # [u, m]
    cb = np.take_along_axis(np.broadcast_to(cbs, fits.shape), np.maximum(need - 1, 0)[..., None], -1)[..., 0]
    g = np.arange(SNR_GRID[0], SNR_GRID[1] + 1e-9, SNR_GRID[2])
    u = len(bits)
    shape = (u, n_m, g.size)
    bl = s["phy"].get_bler(mcs_index=m2[:, :1].reshape(1, n_m, 1).expand(*shape).contiguous(),
                           mcs_table_index=mcs_table, mcs_category=0 if pusch else 1,
                           cb_size=torch.tensor(np.maximum(cb, 24)).reshape(u, n_m, 1).expand(*shape).contiguous(),
                           snr_eff=torch.tensor(10 ** (g / 10), dtype=torch.float32).reshape(1, 1, -1)
                           .expand(*shape).contiguous())
    bler = np.nan_to_num(bl.cpu().numpy().astype(np.float32), nan=1.0, posinf=1.0)
    bler = np.minimum.accumulate(bler, axis=-1)  # non-increasing in SINR (the interpolation wiggles)
    bler[need == 0] = 1.0
    ok = bler <= bler_target
    thr = np.where(ok.any(-1), g[ok.argmax(-1)], np.inf)
    thr[need == 0] = np.inf
    beta = s["beta"][mcs_table - 1, np.asarray(valid)].astype(np.float64)
    return np.asarray(valid), need, bler, thr, g, beta


class _NrRun:
    """One realisation of the link (fading draws, OLLA state) over a stream of packets."""

    def __init__(self, link: NrLink, rng: np.random.Generator) -> None:
        self.link = link
        self.rng = rng
        self.fading = Fading(link, rng)
        self.offset = 0.0

    @staticmethod
    def _eesm_all(gain: np.ndarray, snr_db: np.ndarray, need: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """float32[T, m]: the effective SINR (dB) of m MCS choices, each over the PRBs it needs (``need`` [T, m])
        with its EESM ``beta`` ([m], the same for every row, or [T, m])."""
        snr = (10 ** (snr_db / 10)).astype(np.float32)
        if gain.shape[-1] == 1:
            g = 10 * np.log10(np.maximum(gain[:, 0] * snr, 1e-12))
            return np.broadcast_to(g[:, None], need.shape).astype(np.float32)
        sinr = gain * snr[:, None]  # [T, prb]
        b32 = np.asarray(beta, dtype=np.float32)
        e = np.exp(-sinr[:, None, :] / b32[..., None])  # [T, m, prb]
        cs = np.cumsum(e, axis=2)
        k = np.clip(need, 1, gain.shape[1]) - 1
        mean = np.take_along_axis(cs, k[..., None], axis=2)[..., 0] / (k + 1)
        return (10 * np.log10(np.maximum(-b32 * np.log(np.maximum(mean, 1e-30)), 1e-12))).astype(np.float32)

    def run(self, t: np.ndarray, size_bytes: np.ndarray) -> NrOutcome:
        lk = self.link
        n = t.size
        if n == 0:
            e = np.zeros(0)
            return NrOutcome(e.astype(bool), e, e.astype(int), e.astype(int), e.astype(bool), e)
        bits = size_bytes * 8
        uniq, inv = np.unique(bits, return_inverse=True)
        valid, need, bler, thr, grid, beta = _tables(lk.mcs_table, lk.channel, lk.prbs, tuple(int(b) for b in uniq),
                                                    float(lk.bler_target))
        # an MCS is usable for a size where it fits and Sionna has its BLER curve (table 1 has none for MCS 0-2)
        usable = (need > 0) & (bler < 1).any(axis=-1)
        fit_any = usable.any(axis=1)
        if not fit_any.all():
            big = int(uniq[~fit_any].max()) // 8
            raise ConfigError(f"nr: a packet of {big} bytes does not fit {lk.prbs} PRBs at any MCS of table "
                              f"{lk.mcs_table}; allowed: a larger prbs (up to 275) or smaller packets")
        n_m = valid.size
        if lk.la == "fixed":
            curves = [int(m) for m, ok in zip(valid, usable.all(axis=0)) if ok]
            if lk.mcs not in curves:
                raise ConfigError(f"nr: mcs {lk.mcs} is not usable with MCS table {lk.mcs_table} for these packets "
                                  f"(Sionna has BLER curves for, and the packets fit, MCS {curves[0]}..{curves[-1]})")
        max_prb = int(need[usable].max())  # the widest allocation of a usable MCS
        slot = lk.slot_ms * 1e-3
        rtt = lk.rtt_ms * 1e-3
        u = inv.reshape(-1)
        rows = np.arange(n)
        g0, dg = grid[0], grid[1] - grid[0]

        def lookup(mi: np.ndarray, sinr_db: np.ndarray, ui: np.ndarray = u) -> np.ndarray:
            gi = np.clip(np.rint((sinr_db - g0) / dg).astype(np.int64), 0, grid.size - 1)
            return bler[ui, mi, gi]

        # effective SINR per MCS at the feedback slot and at the first transmission, in chunks
        fb = np.empty((n, n_m), np.float32)
        tx = np.empty((n, n_m), np.float32)
        chunk = max(1, 400_000 // max(max_prb * n_m, 1))
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            sl = slice(a, b)
            t_tx = t[sl]
            t_fb = t_tx - lk.feedback_slots * slot
            g_tx, g_fb = self.fading.prb_gain(t_tx, max_prb, (0.0, -lk.feedback_slots * slot))[:, 0]
            fb[sl] = self._eesm_all(g_fb, lk.snr_at(t_fb), need[u[sl]], beta)
            tx[sl] = self._eesm_all(g_tx, lk.snr_at(t_tx), need[u[sl]], beta)
        # link adaptation
        lowest = np.argmax(usable, axis=1)  # the lowest usable MCS (index) of each size
        u1 = self.rng.random(n)
        if lk.la == "fixed":
            m_idx = np.full(n, int(np.flatnonzero(valid == lk.mcs)[0]))
            if (need[u, m_idx] == 0).any():
                raise ConfigError(f"nr: mcs {lk.mcs} cannot carry a {int(uniq.max()) // 8}-byte packet in "
                                  f"{lk.prbs} PRBs; allowed: a lower mcs or more prbs")
            first_fail = u1 < lookup(m_idx, tx[rows, m_idx])
        elif lk.la == "illa":
            ok = thr[u] <= fb  # [n, m]
            m_idx = np.where(ok.any(1), n_m - 1 - np.argmax(ok[:, ::-1], axis=1), lowest[u])
            first_fail = u1 < lookup(m_idx, tx[rows, m_idx])
        else:  # olla: a loop over packets (the offset follows each first-attempt ACK/NACK)
            m_idx = np.empty(n, np.int64)
            first_fail = np.empty(n, bool)
            up = lk.olla_step_db
            down = up * lk.bler_target / (1 - lk.bler_target)
            off = self.offset
            thr_u, fb_l, tx_l = thr[u], fb, tx
            for i in range(n):
                ok = thr_u[i] <= fb_l[i] - off
                nz = np.flatnonzero(ok)
                m = int(nz[-1]) if nz.size else int(lowest[u[i]])
                m_idx[i] = m
                gi = min(max(int(round((float(tx_l[i, m]) - g0) / dg)), 0), grid.size - 1)
                f = u1[i] < bler[u[i], m, gi]
                first_fail[i] = f
                off = min(20.0, max(-20.0, off + up if f else off - down))
            self.offset = off
        # HARQ: retransmissions of what failed, each at its own slot's channel, combined
        attempts = np.ones(n, np.int64)
        delivered = ~first_fail
        sinr_lin = 10 ** (tx[rows, m_idx].astype(np.float64) / 10)
        acc = np.log2(1 + sinr_lin) if lk.combining == "ir" else sinr_lin.copy()
        pending = np.flatnonzero(first_fail)
        for k in range(2, lk.harq + 1):
            if not pending.size:
                break
            tk = t[pending] + (k - 1) * rtt
            gk = self.fading.prb_gain(tk, max_prb)[0, 0]
            mk = m_idx[pending]
            sk = 10 ** (self._eesm_all(gk, lk.snr_at(tk), need[u[pending], mk][:, None], beta[mk][:, None])[:, 0]
                        .astype(np.float64) / 10)
            acc[pending] += np.log2(1 + sk) if lk.combining == "ir" else sk
            comb = (2 ** acc[pending] - 1) if lk.combining == "ir" else acc[pending]
            ok = self.rng.random(pending.size) >= lookup(mk, 10 * np.log10(np.maximum(comb, 1e-12)), u[pending])
            attempts[pending] = k
            delivered[pending[ok]] = True
            pending = pending[~ok]
        lost = ~delivered
        delay = np.where(lost, 0.0, (attempts - 1) * rtt)
        return NrOutcome(lost, delay, valid[m_idx], attempts, first_fail, tx[rows, m_idx].astype(np.float64))


class _NrProcess:
    """Per-packet use (``LossModel.process``) of packets of ``packet_bytes``: one realisation across steps."""

    def __init__(self, link: NrLink, rng: np.random.Generator) -> None:
        self.run = _NrRun(link, rng)
        self.size = np.array([link.packet_bytes])

    def step(self, t_s: float) -> bool:
        return bool(self.run.run(np.array([t_s]), self.size).lost[0])


def make_nr(**params: Any) -> NrLink:
    """A 5G NR link on Sionna: snr_db, speed_kmh, carrier_ghz, profile, la (illa/olla/fixed), harq, rtt_ms,
    combining, ... (lossbench.netsim.nr.NrLink), or preset=glaris with overrides."""
    names = [f.name for f in fields(NrLink)]
    bad = [k for k in params if k not in names]
    if bad:
        raise ConfigError(f"nr: unknown parameter {bad[0]!r}; valid: {choices(names)}")
    params = {k: v for k, v in params.items() if v is not None}
    preset = params.pop("preset", None)
    if preset is not None:
        return NrLink.from_preset(str(preset), **params)
    return NrLink(**params)


def _factory_signature() -> None:
    """make_nr takes NrLink's fields as keywords (all optional: a preset fills what is not given), so that spec
    strings are checked and converted like every other model's."""
    import inspect

    ps, ann = [], {}
    for f in fields(NrLink):
        t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "Any")
        t = t if "None" in t else f"{t} | None"
        ps.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=t))
        ann[f.name] = t
    make_nr.__signature__ = inspect.Signature(ps)  # type: ignore[attr-defined]  # the spec checker reads it
    make_nr.__annotations__ = ann


_factory_signature()


__all__ = ["NrLink", "NrOutcome", "Fading", "make_nr", "PROFILES", "PRESETS"]
