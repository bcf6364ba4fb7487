"""The codec interface and the machinery every codec shares.

::

    Clip --encode_frames--> [frame bytes] --Packetizer--> EncodedStream(packets)
                                                              |
    Reception.usable --depacketize--> [frame bytes | None] <--+
                                          |
              native concealment?  decode_frames(frames, name)
              else                 decode_frames(frames, None) + waveform strategy
                                          |
                       drop the codec's algorithmic delay --> float32[n]

A backend writes only ``encode_frames`` and ``decode_frames``; the base class
pads for the codec delay, packetises (with optional RFC 2198 / XOR FEC),
measures the bitrate from the payloads, rebuilds frames from a reception,
applies the concealment and aligns the output with the input, so metrics
compare sample-aligned signals.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lossbench.concealment.waveform import CONCEALMENTS
from lossbench.core import DEFAULT_HEADER_BYTES, Clip, EncodedStream, Reception
from lossbench.errors import AudioError, ConfigError, choices
from lossbench.codecs.fec import Depacketized, Packetizer, depacketize
from lossbench.registry import Registry
from lossbench.specs import build


@dataclass
class DecodeResult:
    """Decoded audio plus what happened to each frame.

    Attributes:
        audio: float32[num_samples], aligned with the input clip.
        missing: bool[n_frames], frames that did not arrive (or did not decode)
            and had to be concealed.
        recovered: bool[n_frames], frames rebuilt from packet-level FEC.
        corrupt_packets: payloads that arrived but did not parse.
        info: backend facts (e.g. frames recovered by Opus LBRR).
    """

    audio: np.ndarray
    missing: np.ndarray
    recovered: np.ndarray
    corrupt_packets: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class Codec(abc.ABC):
    """Base class of codec backends.

    Subclasses set ``name``, ``native_concealments``, and in ``__init__``
    ``sample_rate_hz``, ``frame_samples`` and ``delay_samples``.
    """

    name: ClassVar[str]
    native_concealments: ClassVar[tuple[str, ...]] = ()
    sample_rate_hz: int
    frame_samples: int
    delay_samples: int = 0
    #: where frame i's samples start in ``decode_frames`` output: i * frame_samples + this
    conceal_offset_samples: int = 0

    def __init__(
        self,
        frames_per_packet: int = 1,
        red: int = 0,
        red_offset: int = 1,
        xor: int = 0,
        header_bytes: int = DEFAULT_HEADER_BYTES,
    ) -> None:
        self.packetizer = Packetizer(int(frames_per_packet), int(red), int(red_offset), int(xor))
        if int(header_bytes) != header_bytes or header_bytes < 0:
            raise ConfigError(f"header_bytes must be an integer >= 0, got {header_bytes!r}")
        self.header_bytes = int(header_bytes)

    # ------------------------------------------------------------------ description

    @property
    def frame_duration_s(self) -> float:
        return self.frame_samples / self.sample_rate_hz

    @property
    def concealments(self) -> list[str]:
        """Names of every concealment this codec accepts."""
        return list(self.native_concealments) + CONCEALMENTS.names()

    def codec_params(self) -> dict[str, Any]:
        """The backend's own parameters (override)."""
        return {}

    def model_files(self) -> dict[str, Path]:
        """Files whose contents decide this codec's output, by role (override; e.g. trained weights).

        A sweep records their hashes and refuses to resume a run made with
        other contents: the task keys name the codec spec, not the weights.
        """
        return {}

    def config(self) -> dict[str, Any]:
        pk = {k: v for k, v in self.packetizer.params.items() if v != Packetizer().params[k]}
        hb = {"header_bytes": self.header_bytes} if self.header_bytes != DEFAULT_HEADER_BYTES else {}
        return {**self.codec_params(), **pk, **hb}

    def describe(self) -> str:
        ps = ",".join(f"{k}={v}" for k, v in self.config().items())
        return f"{self.name}:{ps}" if ps else self.name

    def check_concealment(self, concealment: str) -> str:
        if concealment in self.native_concealments:
            return concealment
        if concealment in CONCEALMENTS:
            return CONCEALMENTS.canonical(concealment)
        raise ConfigError(
            f"codec {self.name!r} does not support concealment {concealment!r}; valid: {choices(self.concealments)}"
        )

    # ------------------------------------------------------------------ backend hooks

    @abc.abstractmethod
    def encode_frames(self, samples: np.ndarray) -> list[bytes]:
        """Encode float32 samples (a whole number of frames) into per-frame bytes.

        An empty ``bytes`` marks a frame the encoder chose not to send (DTX).
        """

    @abc.abstractmethod
    def decode_frames(self, frames: list[bytes | None], concealment: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Decode per-frame payloads (None = missing) with a native concealment
        (or none: missing frames stay zero).

        Returns:
            (float32[n_frames * frame_samples] before delay removal,
             bool[n_frames] frames that were missing or failed to decode).
        """

    def stream_meta(self, frames: list[bytes]) -> dict[str, Any]:
        """Facts about an encoded stream worth recording (override)."""
        return {}

    # ------------------------------------------------------------------ public API

    def n_frames(self, num_samples: int) -> int:
        return -(-(num_samples + self.delay_samples) // self.frame_samples)

    def padded_input(self, clip: Clip) -> np.ndarray:
        """The clip zero-padded to whole frames covering the codec delay (its rate checked)."""
        if clip.sample_rate_hz != self.sample_rate_hz:
            raise AudioError(
                f"clip {clip.id!r} is at {clip.sample_rate_hz} Hz but codec {self.name!r} runs at "
                f"{self.sample_rate_hz} Hz; resample it first (corpus loaders do this)"
            )
        x = np.zeros(self.n_frames(clip.num_samples) * self.frame_samples, dtype=np.float32)
        x[: clip.num_samples] = clip.samples
        return x

    def encode(self, clip: Clip) -> EncodedStream:
        """Encode a clip into packets of real bytes."""
        n = clip.num_samples
        nf = self.n_frames(n)
        x = self.padded_input(clip)
        frames = self.encode_frames(x)
        if len(frames) != nf:
            raise AssertionError(f"{self.name}: encode_frames gave {len(frames)} frames for {nf}")
        packets = self.packetizer.packetize(frames, self.frame_duration_s, self.frame_samples)
        return EncodedStream(
            codec=self.name,
            config=self.config(),
            sample_rate_hz=self.sample_rate_hz,
            num_samples=n,
            frame_duration_s=self.frame_duration_s,
            packets=tuple(packets),
            header_bytes=self.header_bytes,
            meta={"frames": nf, **self.stream_meta(frames)},
        )

    def receive(self, stream: EncodedStream, reception: Reception | None) -> Depacketized:
        usable = np.ones(stream.num_packets, bool) if reception is None else reception.usable
        return depacketize(self.packetizer, stream.packets, usable, self.n_frames(stream.num_samples),
                           self.frame_samples)

    def decode_with_info(
        self, stream: EncodedStream, reception: Reception | None = None, concealment: str = "zeros"
    ) -> DecodeResult:
        """Decode what arrived in time and conceal the rest."""
        if stream.codec != self.name:
            raise ConfigError(f"stream was encoded by {stream.codec!r}, not {self.name!r}")
        name = self.check_concealment(concealment)
        dp = self.receive(stream, reception)
        native = name in self.native_concealments
        raw, bad = self.decode_frames(dp.frames, name if native else None)
        audio = self.finish_audio(raw, bad, name, stream.num_samples)
        return DecodeResult(audio, bad, dp.recovered, dp.corrupt_packets, self.decode_info())

    def finish_audio(self, raw: np.ndarray, bad: np.ndarray, name: str, num_samples: int) -> np.ndarray:
        """Decoder output -> the clip's samples: a waveform concealment of the ``bad`` frames (when
        ``name`` is not native), then the codec delay removed and the length and range fixed."""
        if name not in self.native_concealments:
            o = self.conceal_offset_samples
            raw = np.concatenate([raw[:o], CONCEALMENTS.get(name).conceal(raw[o:], bad, self.frame_samples,
                                                                           self.sample_rate_hz)])
        d = self.delay_samples
        audio = np.zeros(num_samples, dtype=np.float32)
        seg = raw[d : d + num_samples]
        audio[: seg.size] = seg
        return np.clip(audio, -1.0, 1.0)

    def decode_info(self) -> dict[str, Any]:
        """Facts from the last decode (override)."""
        return {}

    def decode(self, stream: EncodedStream, reception: Reception | None = None, concealment: str = "zeros") -> np.ndarray:
        """float32[stream.num_samples], aligned with the encoded clip."""
        return self.decode_with_info(stream, reception, concealment).audio


CODECS: Registry[type[Codec]] = Registry("codec", "lossbench.codecs")


def make_codec(spec: str | dict[str, Any]) -> Codec:
    """A codec from ``NAME[:k=v,...]`` or ``{"codec": NAME, ...}``."""
    return build(CODECS, spec, "codec")
