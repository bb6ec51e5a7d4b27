#!/usr/bin/env bash
# Installs the system tools netpol drives (and its tests and demo use; zsh only checks the
# completion script, systemd only for systemd-analyze on the units, chromium only runs the
# dashboard's browser test; etcd and openssl for the fleet's tests, which start etcd members of
# their own), on Debian 12 as root.
# Does nothing when they are all present, so `npm test` and `npm run demo` can call it freely.
set -euo pipefail

# pebble (Let's Encrypt's test CA, with pebble-challtestsrv as its DNS) and openssl: the ACME tests.
# haproxy: the PROXY-protocol relay netpol runs for services with `proxyProtocol`.
# openvpn: the egress tests run Debian's OpenVPN as a real provider tunnel.
packages=(iproute2 util-linux nftables wireguard-tools wireguard-go caddy haproxy curl iputils-ping procps tcpdump zsh systemd chromium conntrack etcd-server etcd-client openssl pebble dnsmasq openvpn)
binaries=(ip setpriv nft wg wireguard-go caddy haproxy curl ping pgrep tcpdump zsh systemd-analyze chromium conntrack etcd etcdctl openssl pebble pebble-challtestsrv dnsmasq openvpn)

missing=()
for bin in "${binaries[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "netpol: installing system tools (missing: ${missing[*]})" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "netpol: run as root to install: apt-get install -y --no-install-recommends ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt (unattended-upgrades, a second install) may hold the lock: wait for it.
apt_wait=(-o DPkg::Lock::Timeout=600)
apt-get "${apt_wait[@]}" update -qq
# Recommends would pull in a kernel image; none of them is needed.
apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
