#!/usr/bin/env bash
# Installs the system tools Parley's tests use, from Debian's packages, when they are missing:
# ffmpeg (decodes recordings), chromium and firefox-esr (browser tests), coturn
# (turnutils_uclient and turnutils_peer, for the TURN tests), iproute2 and iptables (the NAT
# traversal, loss and Firefox tests' network namespaces; iproute2's tc slows the link of
# udpbatch's full-buffer test).
# Needs root for apt-get.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || need+=(firefox-esr)
command -v turnutils_uclient >/dev/null 2>&1 || need+=(coturn)
{ command -v ip && command -v tc; } >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing: ${need[*]}; install them (Debian: sudo apt-get install ${need[*]})" >&2
	exit 1
fi
echo "installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
