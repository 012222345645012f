#!/usr/bin/env bash
# Installs the system tools Parley's tests use, from Debian's packages, when they are missing:
# ffmpeg (decodes recordings) and chromium (browser tests). Needs root for apt-get.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing: ${need[*]}; install them (Debian: sudo apt-get install ${need[*]})" >&2
	exit 1
fi
echo "installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
