"""The E-model of ITU-T G.107: a transmission rating R and its MOS from delay and packet loss.

This is what VoIP planning tools report next to signal-based scores. Every G.107 parameter has its
default (Table 3 of G.107) unless given; with all defaults R = 93.2. lossbench feeds it the mouth-to-ear
delay of a row as the one-way delays T and Ta (Tr = 2 Ta: a 4-wire loop, echo handled by TELR) and the row's
effective packet loss (network + late) and its burstiness (BurstR from the loss pattern, 1 for random loss).

Equipment impairment: Ie and the packet-loss robustness factor Bpl come from ITU-T G.113 Appendix I, which
tabulates narrowband codecs only (:data:`G113_APPENDIX_I`). A codec (and concealment) it does not
tabulate gets NaN with the reason: lossbench does not extrapolate planning values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lossbench.errors import ConfigError


@dataclass(frozen=True)
class EModelParams:
    """G.107 inputs; the defaults are G.107's Table 3 values."""

    SLR: float = 8.0
    RLR: float = 2.0
    STMR: float = 15.0
    LSTR: float = 18.0
    Ds: float = 3.0
    Dr: float = 3.0
    TELR: float = 65.0
    WEPL: float = 110.0
    T: float = 0.0
    Tr: float = 0.0
    Ta: float = 0.0
    qdu: float = 1.0
    Ie: float = 0.0
    Bpl: float = 1.0
    Ppl: float = 0.0
    BurstR: float = 1.0
    Nc: float = -70.0
    Nfor: float = -64.0
    Ps: float = 35.0
    Pr: float = 35.0
    A: float = 0.0


def _lg(x: float) -> float:
    return math.log10(x)


def r_factor(p: EModelParams = EModelParams()) -> float:
    """The transmission rating R = Ro - Is - Id - Ie,eff + A (G.107 clause 7)."""
    if p.BurstR < 1.0 or not 0.0 <= p.Ppl <= 100.0 or p.Bpl <= 0.0:
        raise ConfigError(f"E-model: need BurstR >= 1, 0 <= Ppl <= 100 and Bpl > 0, got BurstR={p.BurstR}, "
                          f"Ppl={p.Ppl}, Bpl={p.Bpl}")
    if p.STMR > 20:
        raise ConfigError(f"E-model: STMR above 20 dB (got {p.STMR}) needs G.107's sidetone-echo term, which "
                          "lossbench does not implement")
    if min(p.T, p.Ta, p.Tr) < 0:
        raise ConfigError(f"E-model: delays must be >= 0 ms, got T={p.T}, Ta={p.Ta}, Tr={p.Tr}")
    olr = p.SLR + p.RLR
    # noise floor No
    nos = p.Ps - p.SLR - p.Ds - 100 + 0.004 * (p.Ps - olr - p.Ds - 14) ** 2
    pre = p.Pr + 10 * _lg(1 + 10 ** ((10 - p.LSTR) / 10))
    nor = p.RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = p.Nfor + p.RLR
    no = 10 * _lg(10 ** (p.Nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    ro = 15 - 1.5 * (p.SLR + no)
    # simultaneous impairments Is = Iolr + Ist + Iq
    xolr = olr + 0.2 * (64 + no - p.RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * _lg(10 ** (-p.STMR / 10) + math.exp(-p.T / 4) * 10 ** (-p.TELR / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8) - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)
    q = 37 - 15 * _lg(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q * q
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * _lg(1 + 10 ** y + 10 ** z)
    is_ = iolr + ist + iq
    # delay impairments Id = Idte + Idle + Idd
    roe = -1.5 * (no - p.RLR)
    terv = p.TELR - 40 * _lg((1 + p.T / 10) / (1 + p.T / 150)) + 6 * math.exp(-0.3 * p.T ** 2)
    if p.STMR < 9:
        terv += ist / 2
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-p.T))
    rle = 10.5 * (p.WEPL + 7) * (p.Tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if p.Ta <= 100:
        idd = 0.0
    else:
        x = _lg(p.Ta / 100) / _lg(2)
        idd = 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    id_ = idte + idle + idd
    ie_eff = p.Ie + (95 - p.Ie) * p.Ppl / (p.Ppl / p.BurstR + p.Bpl)
    return ro - is_ - id_ - ie_eff + p.A


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated conversational MOS of a rating R."""
    if not math.isfinite(r):
        return float("nan")
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    # the polynomial dips just below 1 for R under about 6.5; MOS is never below 1
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


#: ITU-T G.113 Appendix I planning values: (Ie, {concealment: Bpl}) per codec as lossbench names it.
#: Bpl is tabulated for these packetisations: G.711 10 ms without PLC (4.3) and with the PLC of G.711
#: Appendix I (25.1); GSM-EFR 20 ms with its own concealment (10.0). GSM-FR (06.10) has an Ie (20) but no
#: Bpl, so it is rated only without loss. AMR-NB 12.2 kbit/s is the GSM-EFR algorithm (3GPP TS 26.071), so
#: the EFR values are used for it; no other AMR mode is tabulated.
G113_APPENDIX_I: dict[str, tuple[float, dict[str, float]]] = {
    "g711": (0.0, {"zeros": 4.3, "g711-plc": 25.1}),
    "amrnb@12.2": (5.0, {"amrnb-bfi": 10.0}),
    "gsm": (20.0, {}),
}


def burst_ratio(mean_burst: float, loss_rate: float) -> float:
    """G.107's BurstR: the mean burst length observed over the mean burst length of random loss at the same
    rate, 1 / (1 - loss_rate); 1 for random loss, > 1 for bursty loss. (For a two-state Markov chain this is
    1 / (p + q).) NaN without loss."""
    if not math.isfinite(mean_burst) or not loss_rate > 0:
        return float("nan")
    return max(1.0, mean_burst * (1.0 - loss_rate))


def emodel_row(key: str, concealment: str, mouth_to_ear_ms: float, loss_rate: float,
               burst_r: float = 1.0) -> dict[str, float | str]:
    """``emodel_r``, ``emodel_mos`` and ``emodel_note`` (why NaN, or which values were used) for a row."""
    nan = float("nan")
    if key not in G113_APPENDIX_I:
        return {"emodel_r": nan, "emodel_mos": nan,
                "emodel_note": f"G.113 Appendix I does not tabulate {key!r}"}
    ie, bpls = G113_APPENDIX_I[key]
    ppl = 100.0 * float(loss_rate) if math.isfinite(loss_rate) else 0.0
    if ppl > 0 and concealment not in bpls:
        have = ", ".join(bpls) or "none"
        return {"emodel_r": nan, "emodel_mos": nan,
                "emodel_note": f"G.113 Appendix I has no Bpl for {key!r} with concealment {concealment!r} "
                               f"(tabulated: {have})"}
    bpl = bpls.get(concealment, 1.0)
    d = float(mouth_to_ear_ms) if math.isfinite(mouth_to_ear_ms) else 0.0
    br = burst_r if math.isfinite(burst_r) else 1.0
    r = r_factor(EModelParams(T=d, Ta=d, Tr=2 * d, Ie=ie, Bpl=bpl, Ppl=ppl, BurstR=br))
    return {"emodel_r": r, "emodel_mos": mos_from_r(r),
            "emodel_note": f"G.113 App. I: Ie={ie:g}, Bpl={bpl:g}" if ppl > 0 else f"G.113 App. I: Ie={ie:g}"}
