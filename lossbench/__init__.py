"""lossbench: how speech and audio codecs hold up on lossy packet networks.

The package is organised by the data that flows through a benchmark::

    Clip --codec.encode--> EncodedStream --channel.transmit--> Reception
      |                                                            |
      |                      codec.decode(stream, reception, concealment)
      |                                                            v
      +------------ metrics(reference, decoded) <------------ decoded audio

``lossbench.core`` holds the shared data types, ``lossbench.netsim`` the loss
models and the packet-network simulator, ``lossbench.traces`` the loss-trace
file formats.
"""

from lossbench.core import Clip, EncodedStream, LossTrace, Packet, PacketKind, Reception
from lossbench.errors import ConfigError, LossbenchError, TraceFormatError

__version__ = "0.1.0"

__all__ = [
    "Clip",
    "ConfigError",
    "EncodedStream",
    "LossTrace",
    "LossbenchError",
    "Packet",
    "PacketKind",
    "Reception",
    "TraceFormatError",
    "__version__",
]
