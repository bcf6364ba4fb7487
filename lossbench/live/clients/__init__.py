"""The real clients live mode drives. A client runs a real sender and a real receiver with the relay between them
and returns what its receiver played (:class:`ClientRun`).

- ``gstreamer:codec=opus,bitrate=24000[,fec=1,loss_perc=10,dtx=1,latency=60]``: opusenc/rtpopuspay to
  rtpjitterbuffer (do-lost)/opusdec (PLC, in-band FEC) (:mod:`lossbench.live.clients.gstreamer`).
- ``chromium[:bitrate=32000,fec=1,dtx=0]``: two WebRTC peer connections in headless Chromium
  (:mod:`lossbench.live.clients.chromium`).
- ``pjsua[:codec=g722]``: a SIP call between two pjsua2 user agents, G.722, G.711, Speex or GSM, pjmedia's jitter
  buffer and concealment (:mod:`lossbench.live.clients.pjsua`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lossbench.errors import ConfigError, choices


@dataclass
class ClientRun:
    """What one client run gave: the received audio, where it starts on the sender's RTP timeline, and the
    client's own statistics (``client_*`` columns)."""

    audio: np.ndarray
    sample_rate_hz: int
    columns: dict[str, Any] = field(default_factory=dict)
    #: (received sample 0's RTP timestamp - the sender's first RTP timestamp) in samples of ``sample_rate_hz``;
    #: None where the client does not say (alignment then correlates over ``search_s``)
    offset_samples: int | None = None
    search_s: float = 3.0
    #: pairs (received sample position at ``sample_rate_hz``, the RTP timestamp playing out there), where the client
    #: reports them (Chromium's getSynchronizationSources): they find the packet that carried the clip's first
    #: sample when the sender sent something before the clip (Chromium's lead-in); None: the clip starts with
    #: the first packet
    rtp_map: list[tuple[float, int]] | None = None
    #: the index (from the flow's first packet) of the packet that carried the clip's first sample, where the
    #: client knows it (pjsua's sender counts the packets it sent before it connected the clip)
    clip_first_index: int | None = None


@dataclass
class RelaySettings:
    """How a client makes its relay (:meth:`make`), and the relays it used (``used``; the last is the run's)."""

    channel: Any  # LiveChannel
    lateness_limit_ms: float = 5.0
    drops_limit: int = 0
    used: list[Any] = field(default_factory=list)

    def make(self, target: tuple[str, int], **kw: Any) -> Any:
        from lossbench.live.relay import Relay

        r = Relay(self.channel, target, lateness_limit_ms=self.lateness_limit_ms, drops_limit=self.drops_limit,
                  **kw)
        self.used.append(r)
        return r


class Client(Protocol):
    name: str

    def check(self) -> None:
        """Raise :class:`~lossbench.live.relay.LiveError` naming the package to install when the client is
        missing."""

    def run(self, clip_wav: Path, relays: RelaySettings, out_dir: Path, duration_s: float) -> ClientRun: ...

    def twin(self) -> tuple[str, str, str]:
        """The offline twin: lossbench's model of this client's codec and receiver, as (codec spec, concealment,
        the playout buffer that matches the client's)."""
        ...


def make_client(spec: str) -> Client:
    from lossbench.specs import call_factory, split_spec

    name, params = split_spec(spec)
    if name == "gstreamer":
        from lossbench.live.clients.gstreamer import GStreamerClient

        return call_factory(GStreamerClient, params, "live client gstreamer")
    if name == "chromium":
        from lossbench.live.clients.chromium import ChromiumClient

        return call_factory(ChromiumClient, params, "live client chromium")
    if name == "pjsua":
        from lossbench.live.clients.pjsua import PjsuaClient

        return call_factory(PjsuaClient, params, "live client pjsua")
    raise ConfigError(f"unknown live client {name!r}; valid: {choices(['gstreamer', 'chromium', 'pjsua'])}")


def resources() -> Path:
    return Path(__file__).parent
