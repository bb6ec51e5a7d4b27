#!/usr/bin/env bash
# Captures what the real tools print for the odd cases netpol's parsers must handle, into the
# files next to this script. Run as root; everything happens in a namespace made here and
# deleted on exit (the machine's own namespace is never touched). Review the diff like code.
set -euo pipefail
cd "$(dirname "$0")"
NS="npcap-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WG="wgcap$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WGPID=""
cleanup() {
  [ -n "$WGPID" ] && kill "$WGPID" 2>/dev/null || true
  ip netns delete "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }

in_ns ip -batch - <<'IP'
link set dev lo up
link add lan0 type veth peer name lan1
link add name br0 type bridge
link set dev lan0 up
link set dev lan1 up
link set dev br0 up
link set dev lan1 master br0
link set dev lan0 alias "netpol 0123abcd"
address add 192.0.2.1/24 dev lan0
address add 10.66.0.2/32 dev lan0
route add table 3 0.0.0.0/0 dev lan0 proto 77
route add table 3 unreachable 0.0.0.0/0 metric 4294967295 proto 77
route add table 3 unreachable 192.168.0.0/16 metric 4294967295 proto 77
route add table 5 198.51.100.0/24 via 192.0.2.254 dev lan0 metric 10 proto 77
route add table 6 203.0.113.0/24 proto 77 nexthop via 192.0.2.253 dev lan0 weight 1 nexthop via 192.0.2.252 dev lan0 weight 2
route add table 7 203.0.113.0/24 via 192.0.2.253 dev lan0 proto static
rule add priority 200 from 192.168.6.0/24 to 192.168.0.0/16 lookup main suppress_prefixlength 0 protocol 77
rule add priority 201 from 192.168.6.0/24 lookup 3 protocol 77
rule add priority 300 from 0.0.0.0/0 fwmark 0x4e50/0xff00 lookup 5 protocol 77
rule add priority 301 from 0.0.0.0/0 fwmark 0x4e51 lookup 5 protocol 77
rule add priority 5000 from 10.200.0.0/16 lookup 42
IP
in_ns ip -6 -batch - <<'IP'
address add 2001:db8::1/64 dev lan0 nodad
route add table 3 2001:db8:1::/48 via 2001:db8::ff dev lan0 proto 77
route add table 3 2001:db8:2::/48 dev lan0 metric 20 proto 77
route add table 3 unreachable ::/0 metric 4294967295 proto 77
rule add priority 200 from 2001:db8:6::/48 lookup 3 protocol 77
rule add priority 202 from ::/0 fwmark 0x4e50/0xff00 lookup 3 protocol 77
IP

# WireGuard (userspace: this kernel has none): one listening peer, one dialed with keepalive.
WG_PROCESS_FOREGROUND=1 ip netns exec "$NS" wireguard-go "$WG" >/dev/null 2>&1 & WGPID=$!
for _ in $(seq 50); do in_ns ip link show dev "$WG" >/dev/null 2>&1 && break; sleep 0.1; done
KEY=$(mktemp) && chmod 600 "$KEY"
wg genkey > "$KEY"
P1=$(wg genkey | wg pubkey); P2=$(wg genkey | wg pubkey)
in_ns wg set "$WG" private-key "$KEY" listen-port 51999 \
  peer "$P1" allowed-ips 10.9.0.1/32,192.168.6.0/24,2001:db8:6::/48 endpoint 198.51.100.7:51820 persistent-keepalive 25 \
  peer "$P2" allowed-ips 0.0.0.0/0
rm -f "$KEY"
in_ns ip link set dev "$WG" up

# The interface's random name becomes wgcap0, so a new capture differs only where output does.
same_name() { sed -e "s/$WG/wgcap0/g"; }
# The two reads netpol makes (src/system/iproute2/iproute2.ts), and one without a family:
# `route show table all` then lists both.
in_ns ip -4 -d -N -json -batch - <<<$'link show\naddress show\nroute show table all\nrule show' \
  | same_name > ip4.json
in_ns ip -6 -N -json -batch - <<<$'address show\nroute show table all\nrule show' \
  | same_name > ip6.json
in_ns ip -N -json -batch - <<<$'route show table all' | same_name > ip-any-family.json
# The private key column is replaced at once: it never reaches a file.
# One interface named, as netpol reads it (`wg show all` unlinks other programs' sockets), its
# lines headed by the name as `all` prints them.
in_ns wg show "$WG" dump | awk -F'\t' -v OFS='\t' -v wg="$WG" '{ if (NF == 4) $1 = "(private)"; print wg, $0 }' \
  | same_name > wg-dump.txt
echo "captured into $(pwd)"
