#!/usr/bin/env bash
# Puts a headless Chromium into .venv/chromium for tests/emails_preview.py, without
# installing anything system-wide: Debian's packages are fetched with
# `apt-get download` and unpacked with `dpkg -x`. Writes .venv/bin/chromium-headless.
# Idempotent: does nothing once .venv/chromium/.installed exists.
set -euo pipefail

VENV=${VENV:-$(dirname "$0")/../.venv}
mkdir -p "$VENV/bin"
VENV=$(cd "$VENV" && pwd)
DEST=$VENV/chromium
WRAPPER=$VENV/bin/chromium-headless
FLAGS='--headless --no-sandbox --disable-gpu --hide-scrollbars'

[[ -f $DEST/.installed && -x $WRAPPER ]] && exit 0

die() { echo "tests/chromium.sh: $*" >&2; exit 1; }

# A Chromium already on PATH: just wrap it.
if system=$(command -v chromium || command -v chromium-browser || command -v google-chrome); then
    mkdir -p "$DEST"
    printf '#!/bin/sh\nexec %q %s "$@"\n' "$system" "$FLAGS" >"$WRAPPER"
    chmod +x "$WRAPPER"
    echo "$system" >"$DEST/.installed"
    echo "chromium-headless: wraps $system"
    exit 0
fi

command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || die "needs Debian/Ubuntu's apt-get, or chromium on PATH"

# chromium and chromium-common, plus the libraries they link that a bare Debian 12
# image lacks (libpulse0 also brings the private libpulsecommon in pulseaudio/).
PKGS=(chromium chromium-common libopenh264-7 libdouble-conversion3 libharfbuzz-subset0
      libpulse0 libflac12 libopus0 libxnvctrl0 libminizip1 libopenjp2-7 libogg0
      libsndfile1 libasyncns0 libvorbis0a libvorbisenc2 libmpg123-0 libmp3lame0)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Downloading ${#PKGS[@]} Debian packages for Chromium into $DEST ..."
if ! (cd "$tmp" && apt-get download -q "${PKGS[@]}" >"$tmp/apt.log" 2>&1); then
    # A machine that never ran `apt-get update` has no package lists: fetch them
    # into a private directory rather than changing the system's.
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
    APT=(-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache")
    (cd "$tmp" && apt-get "${APT[@]}" -q update && apt-get "${APT[@]}" download -q "${PKGS[@]}") \
        >>"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; die "apt-get download failed (log above)"; }
fi

rm -rf "$DEST.new"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$DEST.new"; done

# Check every ELF file of Chromium's against the libraries unpacked beside it.
LIBS=usr/lib/x86_64-linux-gnu:usr/lib/x86_64-linux-gnu/pulseaudio
missing=$(cd "$DEST.new/usr/lib/chromium" &&
    for f in chromium chrome_crashpad_handler *.so*; do
        [[ -f $f ]] || continue
        { LD_LIBRARY_PATH=$DEST.new/${LIBS//:/:$DEST.new/} ldd "$f" 2>/dev/null || true; } \
            | awk '/not found/ {print $1}'
    done | sort -u)
if [[ -n $missing ]]; then
    rm -rf "$DEST.new"
    die "Chromium needs libraries that are neither on this machine nor in the packages downloaded:
$(sed 's/^/  /' <<<"$missing")
Add the Debian packages that ship them to PKGS in tests/chromium.sh (https://packages.debian.org searches by file name)."
fi

rm -rf "$DEST" && mv "$DEST.new" "$DEST"
# The wrapper finds the unpacked Chromium relative to itself (.venv/bin/../chromium).
cat >"$WRAPPER" <<EOF
#!/bin/sh
# Written by tests/chromium.sh: runs the Chromium unpacked in .venv/chromium.
c=\$(cd "\$(dirname "\$0")/../chromium" && pwd)
export LD_LIBRARY_PATH="\$c/${LIBS//:/:\$c/}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "\$c/usr/lib/chromium/chromium" $FLAGS "\$@"
EOF
chmod +x "$WRAPPER"
"$WRAPPER" --version >/dev/null 2>&1 || die "$WRAPPER --version failed: $("$WRAPPER" --version 2>&1 | tail -3)"
"$WRAPPER" --version | tee "$DEST/.installed"
