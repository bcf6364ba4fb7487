#!/usr/bin/env bash
# Fetch Debian's source package of Opus 1.5.2 (suite trixie) with `apt-get source`
# and build it with DRED, deep PLC, OSCE and LossGen into build/opus-1.5.2/.
#
# The system's apt configuration is never touched: a private sources list and
# lists directory are made under build/apt/, with a deb-src line on the mirror
# that the machine's own apt sources already name. dpkg-source verifies the
# checksums of what it unpacks. A finished build is cached: a second run does
# nothing. Called by `make setup`. LOSSBENCH_NO_APT=1 forbids every apt-get call.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION=1.5.2
PREFIX="$ROOT/build/opus-$VERSION"
SRC="$ROOT/build/src"
APTDIR="$ROOT/build/apt"
JOBS="${JOBS:-2}"
STAMP="$PREFIX/.built"

die() { echo "make setup: cannot build Opus $VERSION: $*" >&2; exit 1; }

NATIVE="$ROOT/lossbench/native"

# the shims and opus_demo, rebuilt when their sources are newer than the outputs
build_extras() {
  local srcdir
  srcdir="$(cat "$PREFIX/.srcdir")"
  local inc=(-DHAVE_CONFIG_H -I"$srcdir" -I"$srcdir/include" -I"$srcdir/celt" -I"$srcdir/silk" -I"$srcdir/silk/float" -I"$srcdir/dnn")
  local lib="$PREFIX/lib"
  if [ ! -f "$lib/liblossbench_lossgen.so" ] || [ "$NATIVE/lossgen_shim.c" -nt "$lib/liblossbench_lossgen.so" ]; then
    cc -O2 -fPIC -shared -fvisibility=hidden "${inc[@]}" "$NATIVE/lossgen_shim.c" "$srcdir/dnn/lossgen_data.c" \
      -o "$lib/liblossbench_lossgen.so" -lm || die "compiling the LossGen shim failed"
  fi
  if [ ! -f "$lib/liblossbench_fargan.so" ] || [ "$NATIVE/fargan_shim.c" -nt "$lib/liblossbench_fargan.so" ]; then
    # libopus's own position-independent objects, so the shim reaches its hidden symbols
    mapfile -t objs < <(find "$srcdir" -path '*/.libs/*.o' | sort)
    [ ${#objs[@]} -gt 0 ] || die "no libopus objects under $srcdir (delete $PREFIX and run make setup again)"
    cc -O2 -fPIC -shared "${inc[@]}" "$NATIVE/fargan_shim.c" "${objs[@]}" \
      -o "$lib/liblossbench_fargan.so" -lm || die "compiling the FARGAN shim failed"
  fi
  if [ ! -x "$PREFIX/bin/opus_demo" ]; then
    mkdir -p "$PREFIX/bin"
    cc -O2 "${inc[@]}" "$srcdir/src/opus_demo.c" "$srcdir/dnn/lossgen.c" "$srcdir/dnn/lossgen_data.c" \
      -L"$lib" -Wl,-rpath,"$lib" -lopus -lm -o "$PREFIX/bin/opus_demo" || die "compiling opus_demo failed"
  fi
}

if [ -f "$STAMP" ]; then
  build_extras
  exit 0
fi

need_pkgs=()
command -v cc >/dev/null || need_pkgs+=(gcc libc6-dev)
command -v make >/dev/null || need_pkgs+=(make)
command -v dpkg-source >/dev/null || need_pkgs+=(dpkg-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && [ -z "${LOSSBENCH_NO_APT:-}" ] && command -v apt-get >/dev/null; then
    echo "installing build tools: ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
  else
    die "missing build tools (${need_pkgs[*]}); install them as root, then run make setup again"
  fi
fi

mkdir -p "$SRC"
srcdir="$(find "$SRC" -maxdepth 1 -type d -name "opus-$VERSION*" | head -n1)"
if [ -z "$srcdir" ] || [ ! -f "$srcdir/configure.ac" ]; then
  { [ -z "${LOSSBENCH_NO_APT:-}" ] && command -v apt-get >/dev/null; } || die "no apt-get to fetch Debian's source package 'opus' and no unpacked source in $SRC"
  # the mirror and keyring from the machine's own apt sources (deb822 or one-line form)
  mirror=""; keyring=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u="$(sed -nE 's/^[Uu][Rr][Ii][Ss]:[[:space:]]*([^[:space:]]+).*/\1/p' "$f" | head -n1)"
    k="$(sed -nE 's/^[Ss]igned-[Bb]y:[[:space:]]*([^[:space:]]+).*/\1/p' "$f" | head -n1)"
    case "$u" in
      *security*|"") ;;
      *) mirror="$u"; keyring="$k"; break ;;
    esac
  done
  if [ -z "$mirror" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      u="$(grep -E '^deb ' "$f" | grep -v security | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1; exit}')"
      [ -n "$u" ] && { mirror="$u"; break; }
    done
  fi
  [ -n "$mirror" ] || die "no Debian mirror named in /etc/apt/sources.list{,.d}; put the unpacked opus-$VERSION source in $SRC"
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
  opts="trusted=no"
  [ -n "$keyring" ] && opts="signed-by=$keyring"
  echo "deb-src [$opts] $mirror trixie main" > "$APTDIR/sources.list"
  aptopts=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
           -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
           -o "APT::Sandbox::User=root")
  echo "fetching Debian's source package opus (trixie)"
  apt-get "${aptopts[@]}" update -qq || die "apt-get update on the private trixie deb-src list failed"
  (cd "$SRC" && apt-get "${aptopts[@]}" source -qq opus) \
    || die "apt-get source opus failed (no network to the Debian mirror and no unpacked source in $SRC)"
  srcdir="$(find "$SRC" -maxdepth 1 -type d -name "opus-$VERSION*" | head -n1)"
  [ -n "$srcdir" ] || die "apt-get source did not unpack opus-$VERSION into $SRC (another version came?)"
fi

echo "building Opus $VERSION in $srcdir (jobs: $JOBS)"
start=$(date +%s)
cd "$srcdir"
[ -x configure ] || die "$srcdir has no configure script"
./configure -q --prefix="$PREFIX" --enable-dred --enable-deep-plc --enable-osce --enable-lossgen \
    --disable-doc --disable-extra-programs >/dev/null || die "configure failed in $srcdir"
make -s -j"$JOBS" >/dev/null || die "make failed in $srcdir"
make -s install >/dev/null || die "make install failed"
echo "$srcdir" > "$PREFIX/.srcdir"
# opus_demo (the reference the peer tests compare against) and our two shims
build_extras
end=$(date +%s)
echo "Opus $VERSION built in $((end - start)) s into $PREFIX"
touch "$STAMP"
