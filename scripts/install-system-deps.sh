#!/usr/bin/env bash
# Install the Debian packages lossbench needs, when they are missing.
# Runs apt-get only as root; otherwise it lists what is missing and goes on.
set -euo pipefail

# libopus0: the Opus codec; libvo-amrwbenc0 + libopencore-amrwb0: AMR-WB encoder and decoder;
# libsndfile1: soundfile's FLAC/WAV I/O (the wheel bundles one; the system one is a fallback);
# chromium: the report is checked in a real (headless) browser by the tests.
# the production codecs (lossbench/codecs/{lc3,amrnb,speex,spandsp,codec2,gsm}.py): liblc3, opencore AMR-NB,
# libspeex, spandsp (G.711, G.722 and its PLC), libcodec2, libgsm; libspeexdsp1: speexdsp's jitter buffer (playout=speex)
# live mode (lossbench live, docs/live.md): GStreamer's tools, its Opus/RTP/UDP elements (base, good) and Debian's
# PyGObject with GStreamer's introspection data, which the GStreamer client's peers run under; Chromium (above)
PKGS=(libopus0 libvo-amrwbenc0 libopencore-amrwb0 libsndfile1 chromium
      liblc3-0 libopencore-amrnb0 libspeex1 libspandsp2 libcodec2-1.0 libgsm1 libspeexdsp1
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi gir1.2-gstreamer-1.0
      gir1.2-gst-plugins-base-1.0)
# the codecs' own reference tools, which the peer tests run (make test): elc3/dlc3, speexenc/speexdec,
# c2enc/c2dec, toast/untoast, and FFmpeg's independent G.711, G.722 and AMR-NB
if [ "${1:-}" = "--test" ]; then
  PKGS+=(liblc3-tools speex codec2 libgsm-tools ffmpeg)
fi
# corpus building only (make corpus-deps): ffmpeg, TTS voices and the Asterisk prompts
if [ "${1:-}" = "--corpus" ] || [ "${1:-}" = "--data" ]; then
  PKGS+=(ffmpeg flite espeak-ng asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722
         asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722
         asterisk-core-sounds-en asterisk-core-sounds-es asterisk-core-sounds-fr asterisk-core-sounds-it
         asterisk-core-sounds-ru)  # the plain packages ship the prompts' texts (core-sounds-<lang>.txt.gz)
fi
# the full-band corpus only (make corpus-fullband): game music, a MIDI synthesiser and its soundfont, Tux Paint
if [ "${1:-}" = "--fullband" ]; then
  PKGS+=(ffmpeg fluidsynth fluid-soundfont-gm warzone2100-music singularity-music tuxpaint-stamps-default)
fi
# training data only (make data-deps): Tux Paint's spoken descriptions and texts to read
if [ "${1:-}" = "--data" ]; then
  PKGS+=(tuxpaint-stamps-default fortunes)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "warning: missing system packages (install them as root): ${missing[*]}" >&2
fi
