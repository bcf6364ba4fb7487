"""Network simulation: loss models and a simpy packet-path simulator.

- :mod:`lossbench.netsim.models`: loss models (Bernoulli, Gilbert–Elliott,
  three-state WLAN Markov, netem 4-state, trace replay, time-varying schedule);
- :mod:`lossbench.netsim.markov`: vectorised sampling and closed-form statistics;
- :mod:`lossbench.netsim.network`: links, bottleneck queues with cross traffic,
  jitter and playout buffers, simulated with simpy;
- :mod:`lossbench.netsim.spec`: models by name, ``NAME:k=v`` specs, netem lines.
"""

from lossbench.netsim.markov import ChainStats
from lossbench.netsim.models import (
    Bernoulli,
    GilbertElliott,
    LossGen,
    LossModel,
    LossProcess,
    Netem4State,
    Schedule,
    ThreeStateMarkov,
    TraceReplay,
)
from lossbench.netsim.network import (
    AdaptivePlayout,
    BottleneckConfig,
    Channel,
    FixedPlayout,
    Jitter,
    Link,
    OnOffTraffic,
    PoissonTraffic,
)
from lossbench.netsim.spec import LOSS_MODELS, make_loss_model, parse_netem

__all__ = [
    "LOSS_MODELS",
    "AdaptivePlayout",
    "Bernoulli",
    "BottleneckConfig",
    "ChainStats",
    "Channel",
    "FixedPlayout",
    "GilbertElliott",
    "Jitter",
    "Link",
    "LossGen",
    "LossModel",
    "LossProcess",
    "Netem4State",
    "OnOffTraffic",
    "PoissonTraffic",
    "Schedule",
    "ThreeStateMarkov",
    "TraceReplay",
    "make_loss_model",
    "parse_netem",
]
