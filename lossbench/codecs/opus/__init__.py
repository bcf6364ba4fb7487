"""Opus through libopus (ctypes): the project's Opus 1.5.2 build by default, or the system's.

``lib=build`` (the default) runs the Opus 1.5.2 that ``make setup`` builds from
Debian's source package, with its neural tools; ``lib=system`` runs the
system's libopus (1.3.1 on Debian 12: classic PLC and LBRR only), so the two
versions can be compared. Every stream records the version string it ran.

Concealments, decoded in the order of the reference decoder ``src/opus_demo.c``
(a lost frame is decoded when the next packet arrives):

- ``opus-plc``: classic PLC (decoder complexity 0);
- ``opus-deep-plc``: neural PLC (complexity 5; deep PLC's feature predictor
  and FARGAN fill the gap), 1.5 build only;
- ``opus-fec``: LBRR from the next packet for the frame just before it where
  present, else classic PLC;
- ``opus-dred``: on the first packet after a gap, DRED (``opus_dred_parse``)
  rebuilds the missing frames it covers, LBRR the frame just before the packet,
  deep PLC the rest; 1.5 build only.

``osce=lace|nolace`` turns on the decoder's speech enhancement (complexity 6
or 7, which also selects deep PLC), so it goes with ``opus-deep-plc`` or
``opus-dred``. LBRR and DRED only spend bits when the encoder expects loss:
``fec=1`` and ``dred_ms`` need ``loss_perc`` > 0 (10 by default).

libopus emits LBRR only above per-bandwidth bitrate thresholds, so each
stream records what its packets really carry: the SILK layer's LBRR flag is
read with a minimal RFC 6716 range decoder (:func:`packet_has_lbrr`), and the
DRED extension's bytes from the packet padding (:func:`packet_dred_bytes`).
"""

from lossbench.codecs.opus.bindings import LIBS, NEURAL_CONCEALMENTS, OSCE, _Decoder, _DredParser, _Encoder, libopus, opus_version  # noqa: F401  (re-exported)
from lossbench.codecs.opus.codec import Opus
from lossbench.codecs.opus.packets import packet_dred_bytes, packet_has_lbrr

__all__ = ["LIBS", "NEURAL_CONCEALMENTS", "OSCE", "Opus", "libopus", "opus_version", "packet_dred_bytes",
           "packet_has_lbrr"]
