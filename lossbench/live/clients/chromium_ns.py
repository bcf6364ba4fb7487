"""The Chromium client's run, inside a network namespace of its own (``unshare -n``; run by
:mod:`lossbench.live.clients.chromium`, not by hand).

Chromium's WebRTC gathers no candidates on the loopback interface, and live mode sends nothing outside the loopback
range. So this process makes a namespace whose only other interface (an ``ifb`` device) holds a loopback-range
address, 127.2.0.1/32: Chromium's peer connections take their candidates there, the relay listens on 127.0.0.1, and
every packet stays in the namespace and the loopback range. It serves the page (``chromium_page.html``), starts the
relay when the page posts the two peer connections' candidates, runs headless Chromium with the clip as its fake
microphone, and leaves in ``OUT``: ``received.f32`` (the recorded track), ``chromium.json`` (getStats, the page's
error if any) and ``relay.pkl`` (the relay's log).
"""

from __future__ import annotations

import http.server
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

NS_ADDRESS = "127.2.0.1/32"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
                  "--disable-renderer-backgrounding")


def setup_namespace() -> None:
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "lb0", "type", "ifb"],
                ["ip", "link", "set", "lb0", "up"], ["ip", "addr", "add", NS_ADDRESS, "dev", "lb0"]):
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise SystemExit(f"chromium client: cannot set up its network namespace: `{' '.join(cmd)}` failed: "
                             f"{p.stderr.strip()}")


def main() -> int:
    from lossbench.live.relay import LiveChannel, Relay

    args = json.loads(Path(sys.argv[1]).read_text())
    out = Path(args["out"])
    setup_namespace()
    ch = LiveChannel(**args["channel"])
    state: dict[str, Any] = {"relay": None, "done": threading.Event(), "stats": None, "error": None,
                             "log": [], "connected_s": None}
    page = (Path(__file__).parent / "chromium_page.html").read_bytes()
    t0 = time.monotonic()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/page"):
                self._reply(page, "text/html")
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path = self.path.split("?")[0]
            if path == "/relay":
                c = json.loads(body)
                if state["relay"] is None:
                    rl = Relay(ch, (c["pc2"][0], int(c["pc2"][1])), back_to=(c["pc1"][0], int(c["pc1"][1])),
                               lateness_limit_ms=args["lateness_limit_ms"], drops_limit=args["drops_limit"])
                    state["relay"] = rl.start()
                rl = state["relay"]
                self._reply(json.dumps({"to_pc2": list(rl.listen_addr), "to_pc1": list(rl.out_addr)}).encode())
                return
            if path == "/connected":
                state["connected_s"] = time.monotonic() - t0
            elif path == "/audio":
                rate = int(self.path.split("rate=")[1]) if "rate=" in self.path else 48000
                (out / "received.f32").write_bytes(body)
                state["rate"] = rate
            elif path == "/result":
                state["stats"] = json.loads(body)
                state["done"].set()
            elif path == "/error":
                state["error"] = body.decode(errors="replace")
                state["done"].set()
            elif path == "/log":
                state["log"].append(body.decode(errors="replace"))
            self._reply(b"{}")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    q = "&".join(f"{k}={v}" for k, v in args["page"].items())
    url = f"http://127.0.0.1:{srv.server_address[1]}/page?{q}"
    profile = tempfile.mkdtemp(prefix="lossbench-chromium-")
    err = open(out / "chromium.stderr", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([args["chromium"], *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             f"--use-file-for-fake-audio-capture={args['clip']}%noloop", url],
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        if not state["done"].wait(args["timeout_s"]):
            state["error"] = f"no result from the page in {args['timeout_s']:g} s"
        if proc.poll() is not None and state["stats"] is None and state["error"] is None:
            state["error"] = f"chromium exited with status {proc.returncode}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        err.close()
        srv.shutdown()
        rl = state["relay"]
        if rl is not None:
            rl.stop(drain_s=0.5)
            (out / "relay.pkl").write_bytes(pickle.dumps(rl))
        shutil.rmtree(profile, ignore_errors=True)
    (out / "chromium.json").write_text(json.dumps({
        "stats": state["stats"], "error": state["error"], "log": state["log"], "rate": state.get("rate"),
        "connected_s": state["connected_s"]}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
