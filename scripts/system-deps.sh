#!/usr/bin/env bash
# Install the Debian packages Rooms' tests need, when they are missing: PostgreSQL, Redis,
# ffmpeg, nginx (the `make up` balancer), Chromium, Festival with its Russian voice (speech for
# the offline engine's Russian test) and gettext (the translation catalogue tests). `--up`:
# only what `make up` needs (no Chromium, Festival or gettext). Idempotent; needs root (or
# sudo) only when something is missing.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${1:-}" != --up ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  [ -d /usr/share/festival/voices/russian/msu_ru_nsh_clunits ] || missing+=(festival festvox-ru)
  command -v msgfmt >/dev/null || missing+=(gettext)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
