"""A pjsua2 (PJSIP 2.15) SIP user agent that sends a WAV file or receives and records a call, run as its own process
(one pjsua endpoint per process is PJSIP's rule); it imports nothing from lossbench.

send:  calls ``sip:recv@127.0.0.1:<port>`` offering one codec, ``a=sendonly``; when the call's audio is up it plays
       the WAV file into the call (a null sound device clocks the conference bridge in real time). ``--tail``
       seconds after the file ends it prints one JSON line (how many packets it had sent before it connected the
       file, which places the clip's first packet; its sent-packet count and codec) and exits without a BYE, so
       that the receiver's stream, and its statistics, last until the receiver is told to stop.
recv:  answers, its SDP answer advertising ``--advertise`` (the relay's port) as its media port, so that the
       caller's RTP goes through the relay while this endpoint receives it on ``--rtp-port``; records the call to
       a WAV file through pjmedia's jitter buffer and the codec's packet loss concealment. It prints ``ready``,
       stops on ``stop`` on stdin, and prints one JSON line: the jitter buffer's state (pjmedia_jb_state) and the
       RTCP receive statistics.

RTCP is multiplexed on the RTP port (RFC 5761), so it passes the relay (unimpaired) with the media. VAD is off:
every ``ptime`` ms carries a packet, as the relay's fates assume.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from typing import Any

CODECS = {"g722": "G722/16000/1", "pcmu": "PCMU/8000/1", "pcma": "PCMA/8000/1", "speex": "speex/16000/1",
          "speex-nb": "speex/8000/1", "gsm": "GSM/8000/1", "ilbc": "iLBC/8000/1"}


def _endpoint(pj: Any, sip_port: int, codec: str, ptime: int, jb: dict[str, int]) -> Any:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 2
    cfg.logConfig.consoleLevel = 2
    m = cfg.medConfig
    m.clockRate = m.sndClockRate = 16000
    m.noVad = True
    m.ecTailLen = 0
    m.ptime = ptime
    for k, v in jb.items():
        setattr(m, k, v)
    ep.libInit(cfg)
    tc = pj.TransportConfig()
    tc.port = sip_port
    tc.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()
    want = CODECS[codec]
    for ci in ep.codecEnum2():
        ep.codecSetPriority(ci.codecId, 255 if ci.codecId == want else 0)
    return ep


def _account(pj: Any, ep: Any, user: str, sip_port: int, rtp_port: int) -> Any:
    ac = pj.AccountConfig()
    ac.idUri = f"sip:{user}@127.0.0.1:{sip_port}"
    ac.mediaConfig.rtcpMuxEnabled = True
    ac.mediaConfig.transportConfig.port = rtp_port
    ac.mediaConfig.transportConfig.portRange = 1 if rtp_port else 0
    ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    ac.natConfig.iceEnabled = False
    ac.natConfig.sdpNatRewriteUse = 0
    return ac


def _audio(pj: Any, call: Any) -> Any | None:
    """The call's audio and its index once it is up; a sendonly offer is "remote hold" to pjsua's receiver."""
    ci = call.getInfo()
    up = (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
    for i, mi in enumerate(ci.media):
        if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in up:
            return call.getAudioMedia(i), i
    return None


#: our stdout: PJSIP logs to file descriptor 1, which main() points at stderr
OUT: Any = sys.stdout


def _say(obj: dict) -> None:
    OUT.write(json.dumps(obj) + "\n")
    OUT.flush()


def send(a: argparse.Namespace) -> int:
    import pjsua2 as pj

    ep = _endpoint(pj, a.sip_port, a.codec, a.ptime, {})
    state: dict[str, Any] = {"done_at": None, "tx_before": None, "error": None, "disconnected": False}

    class Player(pj.AudioMediaPlayer):
        def onEof2(self) -> None:
            state["done_at"] = time.monotonic()

    class Call(pj.Call):
        def onCallSdpCreated(self, prm: Any) -> None:
            s = prm.sdp.wholeSdp
            if "a=sendrecv" in s:
                s = s.replace("a=sendrecv", "a=sendonly")
            else:  # the audio line is the SDP's last media section: an attribute appended belongs to it
                s = s.rstrip("\r\n") + "\r\na=sendonly\r\n"
            prm.sdp.wholeSdp = s

        def onCallState(self, prm: Any) -> None:
            ci = self.getInfo()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                state["disconnected"] = True
                if state["tx_before"] is None:
                    state["error"] = f"the call ended before its audio came up: {ci.lastStatusCode} {ci.lastReason}"

        def onCallMediaState(self, prm: Any) -> None:
            got = _audio(pj, self)
            if got is None or state["tx_before"] is not None:
                return
            med, idx = got
            st = self.getStreamStat(idx)
            state["tx_before"] = int(st.rtcp.txStat.pkt)  # packets sent before the file: the clip's first index
            player.createPlayer(a.wav, pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(med)
            state["idx"] = idx

    acc = pj.Account()
    acc.create(_account(pj, ep, "send", a.sip_port, 0))
    player = Player()
    call = Call(acc)
    prm = pj.CallOpParam(True)
    call.makeCall(a.target, prm)
    end = time.monotonic() + a.timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < end and not state["disconnected"]:
        ep.libHandleEvents(10)
        if state["done_at"] is not None and time.monotonic() - state["done_at"] > a.tail:
            st = call.getStreamStat(state["idx"])
            stats = {"tx_pkt": int(st.rtcp.txStat.pkt), "tx_bytes": int(st.rtcp.txStat.bytes)}
            info = call.getStreamInfo(state["idx"])
            stats["codec"] = f"{info.codecName}/{info.codecClockRate}"
            break  # no BYE: the receiver keeps the call, and its stream's statistics, until it is told to stop
    else:
        if state["error"] is None:
            state["error"] = ("the call's audio never came up" if state["tx_before"] is None else
                              "timed out before the file ended")
    _say({"tx_before": state["tx_before"], "error": state["error"], **stats})
    os._exit(0 if state["error"] is None else 1)  # pjsua2's objects do not survive Python's own teardown


def recv(a: argparse.Namespace) -> int:
    import pjsua2 as pj

    jb = {k: v for k, v in (("jbInit", a.jb_init), ("jbMinPre", a.jb_min_pre), ("jbMaxPre", a.jb_max_pre),
                            ("jbMax", a.jb_max)) if v is not None}
    ep = _endpoint(pj, a.sip_port, a.codec, a.ptime, jb)
    state: dict[str, Any] = {"idx": None, "call": None}
    recs = [pj.AudioMediaRecorder()]  # emptied at the end: the recorder's destructor closes the WAV file

    def snapshot(call: Any, idx: int) -> dict[str, Any] | None:
        try:
            st = call.getStreamStat(idx)
            info = call.getStreamInfo(idx)
        except pj.Error:
            return None
        j, rx = st.jbuf, st.rtcp.rxStat
        return {"jbuf": {k: int(getattr(j, k)) for k in ("frameSize", "minPrefetch", "maxPrefetch", "burst",
                                                          "prefetch", "size", "avgDelayMsec", "minDelayMsec",
                                                          "maxDelayMsec", "devDelayMsec", "avgBurst", "lost",
                                                          "discard", "empty")},
                "rx": {"pkt": int(rx.pkt), "bytes": int(rx.bytes), "loss": int(rx.loss), "dup": int(rx.dup),
                       "reorder": int(rx.reorder), "discard": int(rx.discard),
                       "jitter_mean_us": float(rx.jitterUsec.mean), "jitter_max_us": float(rx.jitterUsec.max)},
                "codec": f"{info.codecName}/{info.codecClockRate}", "ptime": a.ptime}

    class Call(pj.Call):
        def onCallSdpCreated(self, prm: Any) -> None:
            s = prm.sdp.wholeSdp
            prm.sdp.wholeSdp = s.replace(f"m=audio {a.rtp_port} ", f"m=audio {a.advertise} ", 1)

        def onStreamDestroyed(self, prm: Any) -> None:  # the caller hung up first: keep what the stream saw
            if state["idx"] is not None and state.get("snap") is None:
                state["snap"] = snapshot(self, state["idx"])

        def onCallMediaState(self, prm: Any) -> None:
            got = _audio(pj, self)
            if got is None or state["idx"] is not None:
                return
            med, idx = got
            recs[0].createRecorder(a.out)
            med.startTransmit(recs[0])
            state["idx"] = idx
            state["t_media"] = time.monotonic()

    class Acc(pj.Account):
        def onIncomingCall(self, prm: Any) -> None:
            c = Call(self, prm.callId)
            op = pj.CallOpParam()
            op.statusCode = 200
            c.answer(op)
            state["call"] = c

    acc = Acc()
    acc.create(_account(pj, ep, "recv", a.sip_port, a.rtp_port))
    OUT.write("ready\n")
    OUT.flush()
    end = time.monotonic() + a.timeout
    out: dict[str, Any] = {"error": None}
    while time.monotonic() < end:
        ep.libHandleEvents(10)
        r, _, _ = select.select([sys.stdin], [], [], 0)
        if r:
            line = sys.stdin.readline()
            if not line or line.strip() == "stop":
                break
    else:
        out["error"] = "timed out waiting for stop"
    if state["call"] is None or state["idx"] is None:
        out["error"] = out["error"] or "no call's audio came up"
    else:
        snap = state.get("snap") or snapshot(state["call"], state["idx"])
        if snap is None:
            out["error"] = out["error"] or "the call's stream was gone before its statistics were read"
        else:
            out.update(snap)
        try:
            state["call"].getAudioMedia(state["idx"]).stopTransmit(recs[0])
        except pj.Error:
            pass
    call = state["call"]
    recs.clear()  # closes the WAV file (writes its header's sizes)
    try:
        if call is not None:
            call.hangup(pj.CallOpParam(True))
    except pj.Error:
        pass
    for _ in range(20):
        ep.libHandleEvents(10)
    _say(out)
    os._exit(0 if out["error"] is None else 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=("send", "recv"))
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--codec", choices=sorted(CODECS), default="g722")
    ap.add_argument("--ptime", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--target", help="send: the receiver's SIP URI")
    ap.add_argument("--wav", help="send: the file to play (16 kHz mono)")
    ap.add_argument("--tail", type=float, default=0.3, help="send: seconds between the file's end and hang-up")
    ap.add_argument("--rtp-port", type=int, default=0, help="recv: its RTP (and muxed RTCP) port")
    ap.add_argument("--advertise", type=int, default=0, help="recv: the port its SDP answer gives (the relay's)")
    ap.add_argument("--out", help="recv: the WAV file it records")
    for k in ("jb-init", "jb-min-pre", "jb-max-pre", "jb-max"):
        ap.add_argument(f"--{k}", type=int, default=None, help="recv: pjsua's jitter-buffer setting, in ms")
    a = ap.parse_args(argv)
    global OUT
    sys.stdout.flush()
    OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # PJSIP's console log
    import pjsua2 as pj

    try:
        return send(a) if a.role == "send" else recv(a)
    except pj.Error as e:  # one line: what failed and PJSIP's reason
        sys.stderr.write(f"pjsua {a.role}: {e.title} failed: {e.reason} (PJSIP status {e.status})\n")
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
