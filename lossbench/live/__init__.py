"""Live mode: real RTP clients through lossbench's channels in real time (``lossbench live``).

- :mod:`lossbench.live.relay`: the user-space UDP relay that applies a channel, seeded per packet.
- :mod:`lossbench.live.clients`: the clients it drives (GStreamer, Chromium's WebRTC).
- :mod:`lossbench.live.run`: a whole run: client, relay, capture, alignment, scores and the offline twin.
"""

from lossbench.live.relay import LiveChannel, LiveError, Relay

__all__ = ["LiveChannel", "LiveError", "Relay"]
