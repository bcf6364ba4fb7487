"""The real clients live mode drives. A client runs a real sender and a real receiver with the relay between them
and returns what its receiver played (:class:`ClientRun`).

- ``gstreamer:codec=opus,bitrate=24000[,fec=1,loss_perc=10,dtx=1,latency=60]``: opusenc/rtpopuspay to
  rtpjitterbuffer (do-lost)/opusdec (PLC, in-band FEC) (:mod:`lossbench.live.clients.gstreamer`).
- ``chromium[:bitrate=32000,fec=1,dtx=0]``: two WebRTC peer connections in headless Chromium
  (:mod:`lossbench.live.clients.chromium`).
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
    #: None where the client does not say (alignment then correlates)
    offset_samples: int | None = None


class Client(Protocol):
    name: str

    def check(self) -> None:
        """Raise :class:`~lossbench.live.relay.LiveError` naming the package to install when the client is
        missing."""

    def run(self, clip_wav: Path, relay_factory: Any, out_dir: Path, duration_s: float) -> ClientRun: ...

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
    raise ConfigError(f"unknown live client {name!r}; valid: {choices(['gstreamer', 'chromium'])}")


def resources() -> Path:
    return Path(__file__).parent
