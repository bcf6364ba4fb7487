"""The codec contract and the machinery frame-by-frame codecs share.

Every codec satisfies the :class:`Codec` protocol::

    encode(clip) -> EncodedStream                          (packets of real bytes, facts in .meta)
    decode(stream, reception, concealment) -> DecodeResult (audio, missing, recovered, corrupt, info)

Neither call writes instance state that the other (or another call) reads:
every fact about a stream lives in ``EncodedStream.meta`` and every fact
about one decode in ``DecodeResult.info``, so one codec object can serve
many streams at once (threads of a Dask worker) and a row never records
another task's facts.

Most codecs are frame codecs and subclass :class:`FrameCodec`, the template::

    Clip --encode_frames--> ([frame bytes], meta) --Packetizer--> EncodedStream(packets, meta)
                                                                      |
    Reception.usable --depacketize--> [frame bytes | None] <----------+
                                          |
              native concealment?  decode_frames(frames, name) -> (raw, bad, info)
              else                 decode_frames(frames, None) + waveform strategy
                                          |
                       drop the codec's algorithmic delay --> DecodeResult

A frame codec writes only ``encode_frames`` and ``decode_frames``; the base
pads for the codec delay, packetises (with optional RFC 2198 / XOR FEC),
measures the bitrate from the payloads, rebuilds frames from a reception,
applies the concealment and aligns the output with the input, so metrics
compare sample-aligned signals. Codecs whose packets are not frames
(SoundSpring's slices) implement the protocol directly on :class:`CodecBase`,
which holds the description and checks every codec shares.

The harness (``lossbench.benchmarks.run``) turns every scalar of ``meta``
and ``info`` into a column of the result row, so a backend reports a new
fact by returning it; names the harness owns (:data:`RESERVED_COLUMNS`) are
refused when the codec class is registered or when the fact first appears.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from lossbench.benchmarks.columns import RESERVED_COLUMNS
from lossbench.codecs.fec import Depacketized, Packetizer, depacketize
from lossbench.concealment.waveform import CONCEALMENTS, canonical_waveform, get_waveform, is_waveform
from lossbench.core import DEFAULT_HEADER_BYTES, Clip, EncodedStream, Reception
from lossbench.errors import AudioError, ConfigError, choices
from lossbench.registry import Registry
from lossbench.specs import build


@dataclass
class DecodeResult:
    """Decoded audio plus what happened to each frame.

    Attributes:
        audio: float32[num_samples] (mono) or float32[num_samples, channels] (a stereo codec), aligned with the
            input clip.
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


#: meta keys that are not facts for the result table (structure the decoder needs)
STRUCTURAL_META = frozenset({"frames", "plan", "bit_counts"})


def check_fact_names(owner: str, names: Any) -> None:
    """A ConfigError if a codec reports a fact under a name the harness owns."""
    clash = sorted(set(names) & RESERVED_COLUMNS)
    if clash:
        raise ConfigError(f"codec {owner!r} reports fact(s) {', '.join(map(repr, clash))}, which are result "
                          f"columns the harness writes; rename them")


@runtime_checkable
class Codec(Protocol):
    """What the harness, the CLI and the reports need of a codec.

    ``encode`` and ``decode`` are pure with respect to the codec object: the
    stream carries the facts of its encoding (``meta``), the result those of
    its decoding (``info``).
    """

    name: ClassVar[str]
    native_concealments: tuple[str, ...]
    channels: int
    sample_rate_hz: int
    frame_samples: int
    delay_samples: int
    header_bytes: int

    @property
    def frame_duration_s(self) -> float: ...

    @property
    def concealments(self) -> list[str]: ...

    @property
    def packet_duration_s(self) -> float: ...

    @property
    def emodel_key(self) -> str: ...

    def config(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def check_concealment(self, concealment: str) -> str: ...

    def model_files(self) -> dict[str, Path]: ...

    def encode(self, clip: Clip) -> EncodedStream: ...

    def decode(self, stream: EncodedStream, reception: Reception | None = None,
               concealment: str = "zeros") -> DecodeResult: ...

    def decode_many(self, stream: EncodedStream, reception: Reception | None,
                    concealments: list[str]) -> list[DecodeResult]: ...


class CodecBase(abc.ABC):
    """Description and checks every codec shares (name, rate, concealment names, config, stream checks).

    Subclasses set ``name``, ``native_concealments``, and in ``__init__``
    ``sample_rate_hz``, ``frame_samples`` and ``delay_samples``. Facts a
    subclass reports may be declared in ``facts`` (checked against the
    harness's columns when the class is defined); undeclared ones are checked
    when they first reach the harness.
    """

    name: ClassVar[str]
    native_concealments: tuple[str, ...] = ()  # a class default; a codec may narrow it per instance
    #: names of the scalar facts this codec puts in ``meta`` / ``info`` (documentation and a clash check)
    facts: ClassVar[tuple[str, ...]] = ()
    sample_rate_hz: int
    frame_samples: int
    #: channels the codec codes (2: it takes a stereo clip as it is; a codec of one channel gets the mean)
    channels: int = 1
    delay_samples: int = 0
    header_bytes: int = DEFAULT_HEADER_BYTES
    #: where frame i's samples start in the decoder's raw output: i * frame_samples + this
    conceal_offset_samples: int = 0

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        check_fact_names(getattr(cls, "name", cls.__name__), cls.facts)

    def _set_header(self, header_bytes: int) -> None:
        if int(header_bytes) != header_bytes or header_bytes < 0:
            raise ConfigError(f"header_bytes must be an integer >= 0, got {header_bytes!r}")
        self.header_bytes = int(header_bytes)

    # ------------------------------------------------------------------ description

    @property
    def frame_duration_s(self) -> float:
        return self.frame_samples / self.sample_rate_hz

    @property
    def frames_per_packet(self) -> int:
        """Frames each primary packet carries (one, unless the codec packs more)."""
        return 1

    @property
    def packet_duration_s(self) -> float:
        """The audio each primary packet carries, in s."""
        return self.frames_per_packet * self.frame_duration_s

    @property
    def emodel_key(self) -> str:
        """The codec's key in G.113 Appendix I's table of equipment impairments (``lossbench.playout.emodel``):
        its name, unless the codec's mode decides it."""
        return self.name

    @property
    def concealments(self) -> list[str]:
        """Names of every concealment this codec accepts (with two channels, only its own: the waveform
        concealments work on one channel)."""
        return list(self.native_concealments) + (CONCEALMENTS.names() if self.channels == 1 else [])

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
        hb = {"header_bytes": self.header_bytes} if self.header_bytes != DEFAULT_HEADER_BYTES else {}
        return {**self.codec_params(), **hb}

    def describe(self) -> str:
        ps = ",".join(f"{k}={v}" for k, v in self.config().items())
        return f"{self.name}:{ps}" if ps else self.name

    #: concealment names of earlier releases -> what to use now (a spec naming one gets an error that says so)
    RENAMED: dict[str, str] = {}

    def check_concealment(self, concealment: str) -> str:
        if concealment in self.native_concealments:
            return concealment
        if concealment in self.RENAMED:
            raise ConfigError(f"codec {self.name!r}: concealment {concealment!r} was renamed; use "
                              f"{self.RENAMED[concealment]}")
        if self.channels > 1 and is_waveform(concealment):
            raise ConfigError(f"codec {self.name!r} with {self.channels} channels: the waveform concealment "
                              f"{concealment!r} works on one channel; valid here: {choices(self.native_concealments)}")
        if is_waveform(concealment):
            return canonical_waveform(concealment)
        raise ConfigError(
            f"codec {self.name!r} does not support concealment {concealment!r}; valid: {choices(self.concealments)}"
        )

    @abc.abstractmethod
    def encode(self, clip: Clip) -> EncodedStream:
        """The clip as packets (``meta``: the facts of this encoding)."""

    @abc.abstractmethod
    def decode(self, stream: EncodedStream, reception: Reception | None = None,
               concealment: str = "zeros") -> DecodeResult:
        """What a receiver plays from ``stream`` given ``reception`` (None: every packet arrived), concealing
        with ``concealment``."""

    def decode_many(self, stream: EncodedStream, reception: Reception | None,
                    concealments: list[str]) -> list[DecodeResult]:
        """One reception decoded with each of ``concealments``: what ``decode`` gives for each, in order.

        The harness calls this once per reception; a codec whose receiver has a stage that every
        concealment shares (entropy decoding) overrides it to run that stage once.
        """
        return [self.decode(stream, reception, c) for c in concealments]

    def check_stream(self, stream: EncodedStream) -> None:
        """A ConfigError unless ``stream`` was encoded by this codec."""
        if stream.codec != self.name:
            raise ConfigError(f"stream was encoded by {stream.codec!r}, not {self.name!r}")

    # ------------------------------------------------------------------ shared steps

    def n_frames(self, num_samples: int) -> int:
        return -(-(num_samples + self.delay_samples) // self.frame_samples)

    def padded_input(self, clip: Clip) -> np.ndarray:
        """The clip zero-padded to whole frames covering the codec delay (its rate checked)."""
        if clip.sample_rate_hz != self.sample_rate_hz:
            raise AudioError(
                f"clip {clip.id!r} is at {clip.sample_rate_hz} Hz but codec {self.name!r} runs at "
                f"{self.sample_rate_hz} Hz; resample it first (corpus loaders do this)"
            )
        if clip.channels != self.channels:
            raise AudioError(f"clip {clip.id!r} has {clip.channels} channel(s) but codec {self.name!r} codes "
                             f"{self.channels}; give it {'Clip.mono()' if self.channels == 1 else 'a stereo clip'}")
        shape = (self.n_frames(clip.num_samples) * self.frame_samples,) + ((self.channels,) if self.channels > 1 else ())
        x = np.zeros(shape, dtype=np.float32)
        x[: clip.num_samples] = clip.samples
        return x

    def finish_audio(self, raw: np.ndarray, bad: np.ndarray, name: str, num_samples: int) -> np.ndarray:
        """Decoder output -> the clip's samples: a waveform concealment of the ``bad`` frames (when
        ``name`` is not native), then the codec delay removed and the length and range fixed."""
        if name not in self.native_concealments:
            o = self.conceal_offset_samples
            raw = np.concatenate([raw[:o], get_waveform(name).conceal(raw[o:], bad, self.frame_samples,
                                                                           self.sample_rate_hz)])
        d = self.delay_samples
        audio = np.zeros((num_samples,) + raw.shape[1:], dtype=np.float32)
        seg = raw[d : d + num_samples]
        audio[: seg.size] = seg
        return np.clip(audio, -1.0, 1.0)


class FrameCodec(CodecBase, abc.ABC):
    """The template of frame-by-frame codecs: write ``encode_frames`` and ``decode_frames``.

    ``encode_frames`` returns the frames and the facts about them (``meta``:
    scalars become result columns; a key ``<x>_bits`` is reported as
    ``<x>_kbps`` per second of the clip). ``decode_frames`` returns the raw
    audio, the frames it could not decode and the facts of that decode.
    """

    def __init__(
        self,
        frames_per_packet: int = 1,
        red: int = 0,
        red_offset: int = 1,
        xor: int = 0,
        header_bytes: int = DEFAULT_HEADER_BYTES,
    ) -> None:
        self.packetizer = Packetizer(int(frames_per_packet), int(red), int(red_offset), int(xor))
        self._set_header(header_bytes)

    @property
    def frames_per_packet(self) -> int:
        return self.packetizer.frames_per_packet

    def config(self) -> dict[str, Any]:
        pk = {k: v for k, v in self.packetizer.params.items() if v != Packetizer().params[k]}
        hb = {"header_bytes": self.header_bytes} if self.header_bytes != DEFAULT_HEADER_BYTES else {}
        return {**self.codec_params(), **pk, **hb}

    # ------------------------------------------------------------------ backend hooks

    @abc.abstractmethod
    def encode_frames(self, samples: np.ndarray) -> tuple[list[bytes], dict[str, Any]]:
        """Encode float32 samples (a whole number of frames) into per-frame bytes, and facts about them.

        An empty ``bytes`` marks a frame the encoder chose not to send (DTX).
        """

    @abc.abstractmethod
    def decode_frames(self, frames: list[bytes | None], concealment: str | None
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Decode per-frame payloads (None = missing) with a native concealment
        (or none: missing frames stay zero).

        Returns:
            (float32[n_frames * frame_samples] before delay removal,
             bool[n_frames] frames that were missing or failed to decode,
             facts about this decode, e.g. frames recovered by LBRR).
        """

    # ------------------------------------------------------------------ the protocol

    def encode(self, clip: Clip) -> EncodedStream:
        """Encode a clip into packets of real bytes."""
        n = clip.num_samples
        nf = self.n_frames(n)
        x = self.padded_input(clip)
        frames, facts = self.encode_frames(x)
        if len(frames) != nf:
            raise AssertionError(f"{self.name}: encode_frames gave {len(frames)} frames for {nf}")
        packets = self.packetizer.packetize(frames, self.frame_duration_s, self.frame_samples)
        dur = n / self.sample_rate_hz
        meta: dict[str, Any] = {"frames": nf}
        for k, v in facts.items():
            if k.endswith("_bits"):
                meta[k[: -len("_bits")] + "_kbps"] = v / dur / 1000.0
            else:
                meta[k] = v
        return EncodedStream(
            codec=self.name,
            config=self.config(),
            sample_rate_hz=self.sample_rate_hz,
            num_samples=n,
            frame_duration_s=self.frame_duration_s,
            packets=tuple(packets),
            header_bytes=self.header_bytes,
            meta=meta,
        )

    def receive(self, stream: EncodedStream, reception: Reception | None) -> Depacketized:
        usable = np.ones(stream.num_packets, bool) if reception is None else reception.usable
        return depacketize(self.packetizer, stream.packets, usable, self.n_frames(stream.num_samples),
                           self.frame_samples, reception)

    #: True for a codec whose decoder repairs a frame from a later packet (Opus LBRR, DRED): its ``decode_frames``
    #: takes ``clock``, the :class:`~lossbench.codecs.fec.Depacketized` whose ``in_time(carrier, frame)`` says
    #: what the receiver clock allows
    repairs_from_later_packets: ClassVar[bool] = False

    def decode_frames_many(self, frames: list[bytes | None], concealments: list[str | None],
                           clock: Depacketized | None = None) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """``decode_frames`` for each concealment (override to share what they have in common)."""
        if self.repairs_from_later_packets:
            return [self.decode_frames(frames, c, clock) for c in concealments]  # type: ignore[call-arg]  # such codecs take clock
        return [self.decode_frames(frames, c) for c in concealments]

    def decode_received(self, stream: EncodedStream, dp: Depacketized, hooks: list[str | None]
                        ) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """(raw audio, bad frames, facts) for each hook (a native concealment, or None: bad frames left zero) from
        what arrived: ``decode_frames_many`` on the frames (override for a decoder that needs the stream's
        structural meta as well)."""
        return self.decode_frames_many(dp.frames, hooks, dp)

    def decode(self, stream: EncodedStream, reception: Reception | None = None,
               concealment: str = "zeros") -> DecodeResult:
        """Decode what arrived in time and conceal the rest."""
        return self.decode_many(stream, reception, [concealment])[0]

    def decode_many(self, stream: EncodedStream, reception: Reception | None,
                    concealments: list[str]) -> list[DecodeResult]:
        """Depacketise once; decode once per distinct native concealment (and once without one for every
        waveform strategy), then conceal and align each."""
        self.check_stream(stream)
        names = [self.check_concealment(c) for c in concealments]
        dp = self.receive(stream, reception)
        hooks = list(dict.fromkeys(n if n in self.native_concealments else None for n in names))
        raw = dict(zip(hooks, self.decode_received(stream, dp, hooks)))
        out = []
        for n in names:
            audio, bad, info = raw[n if n in self.native_concealments else None]
            # finish_audio writes a new array (waveform strategies copy their input); each result owns its masks
            out.append(DecodeResult(self.finish_audio(audio, bad, n, stream.num_samples), bad.copy(),
                                    dp.recovered.copy(), dp.corrupt_packets, dict(info)))
        return out


CODECS: Registry[type[Codec]] = Registry("codec", "lossbench.codecs")


def make_codec(spec: str | dict[str, Any]) -> Codec:
    """A codec from ``NAME[:k=v,...]`` or ``{"codec": NAME, ...}``."""
    return build(CODECS, spec, "codec")
