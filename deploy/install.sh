#!/usr/bin/env bash
# Installs netpol on a Debian/Ubuntu router or VPS, as root:
#
#   sudo deploy/install.sh                    # system tools, the package, /etc/netpol, units
#   sudo deploy/install.sh --uninstall        # netpol down, then remove what install put here
#   sudo deploy/install.sh --uninstall --purge  # ...and /etc/netpol (keys, token, policy) too
#
# Run it from a checkout (it builds the package with `npm pack`) or from an installed package.
# Settings (environment):
#   NETPOL_TARBALL  install this `npm pack` tarball instead of packing one
#   NETPOL_SITE     the site this machine is (written to /etc/netpol/netpol.env; default: home)
#   NETPOL_LISTEN   where `netpol serve` listens (default 127.0.0.1:9470; use the tunnel address)
#   PREFIX          npm's global prefix: netpol goes to PREFIX/bin (default: npm config get prefix)
#   DESTDIR         install under this root instead of / (packaging and tests); with DESTDIR
#                   set, nothing outside it changes: no apt-get, no systemctl
#   SKIP_DEPS=1     do not apt-get the system tools
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$(dirname "$here")"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-$(npm config get prefix 2>/dev/null || echo /usr/local)}"
etc="$DESTDIR/etc/netpol"
state="$DESTDIR/var/lib/netpol"
units="$DESTDIR/etc/systemd/system"
networkd="$DESTDIR/etc/systemd/networkd.conf.d"
bash_completion="$DESTDIR/usr/share/bash-completion/completions/netpol"
zsh_completion="$DESTDIR/usr/share/zsh/vendor-completions/_netpol"
bin="$DESTDIR$PREFIX/bin/netpol"
unit_names=(netpol-apply.service netpol-watch.service netpol-serve.service netpol-agent.service)

say() { echo "netpol-install: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# systemctl only on the live system, and only where systemd runs.
live_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

need_root() {
  [ -n "$DESTDIR" ] || [ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
}

check_node() {
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  [ "$major" -ge 20 ] && return
  die "netpol needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none)).
  Debian 13 / Ubuntu 24.10 and later: apt-get install nodejs npm
  Debian 12 / Ubuntu 22.04 / 24.04: install Node 20 from NodeSource (https://github.com/nodesource/distributions)
  then run this again."
}

install_tools() {
  [ -n "$DESTDIR" ] || [ "${SKIP_DEPS:-}" = 1 ] && return
  command -v apt-get >/dev/null || die "no apt-get: install iproute2, nftables, wireguard-tools (and wireguard-go where the kernel lacks WireGuard) with your package manager, then run with SKIP_DEPS=1"
  say "installing system tools"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Recommends would pull in a kernel image; none of them is needed.
  apt-get install -y -qq --no-install-recommends iproute2 nftables wireguard-tools >/dev/null
  # Userspace WireGuard only where the kernel has none (containers, some VPS kernels).
  if ! modprobe -q wireguard 2>/dev/null && [ ! -d /sys/module/wireguard ]; then
    apt-get install -y -qq --no-install-recommends wireguard-go >/dev/null
  fi
}

# The tarball to install: given, packed from this checkout, or re-packed from this install.
tarball() {
  if [ -n "${NETPOL_TARBALL:-}" ]; then
    echo "$NETPOL_TARBALL"
    return
  fi
  local out
  out="$(mktemp -d)"
  if [ -f "$pkg/tsconfig.json" ]; then
    [ -d "$pkg/node_modules" ] || (cd "$pkg" && npm ci --no-audit --no-fund >&2)
    (cd "$pkg" && npm pack --silent --pack-destination "$out" >/dev/null)
  else
    (cd "$pkg" && npm pack --silent --ignore-scripts --pack-destination "$out" >/dev/null)
  fi
  echo "$out"/netpol-*.tgz
}

install_package() {
  local tgz
  tgz="$(tarball)"
  say "installing $(basename "$tgz") into $DESTDIR$PREFIX"
  # The package has no runtime dependencies (lib/ is bundled): nothing is fetched.
  npm install --global --prefix "$DESTDIR$PREFIX" --offline --no-audit --no-fund "$tgz" >/dev/null
  "$bin" --version >/dev/null || die "$bin does not run"
}

# /etc/netpol: policy and settings readable by root's services, keys 0700, token 0600.
lay_out_etc() {
  install -d -m 0755 "$etc"
  install -d -m 0700 "$etc/keys" "$state"
  if [ ! -f "$etc/netpol.env" ]; then
    printf '# Read by the netpol-*.service units.\nNETPOL_SITE=%s\nNETPOL_LISTEN=%s\n' \
      "${NETPOL_SITE:-home}" "${NETPOL_LISTEN:-127.0.0.1:9470}" >"$etc/netpol.env"
    chmod 0644 "$etc/netpol.env"
  fi
  if [ ! -f "$etc/token" ]; then
    # 48 bytes: 64 characters, which no key file check could mistake for a WireGuard key.
    (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$etc/token" && echo >>"$etc/token")
  fi
  chmod 0600 "$etc/token"
  if [ ! -f "$etc/policy.yaml.example" ]; then
    install -m 0644 "$DESTDIR$PREFIX/lib/node_modules/netpol/policies/b-publish-via-vps.yaml" \
      "$etc/policy.yaml.example"
  fi
}

install_units() {
  install -d -m 0755 "$units/netpol-.service.d" "$networkd"
  for u in "${unit_names[@]}"; do
    sed "s#/usr/local/bin/netpol#$PREFIX/bin/netpol#; s#/usr/local/lib/node_modules#$PREFIX/lib/node_modules#" \
      "$here/systemd/$u" >"$units/$u"
    chmod 0644 "$units/$u"
  done
  install -m 0644 "$here/systemd/netpol-.service.d/hardening.conf" "$units/netpol-.service.d/"
  install -m 0644 "$here/networkd-keep-foreign.conf" "$networkd/netpol.conf"
  install -d -m 0755 "$(dirname "$bash_completion")" "$(dirname "$zsh_completion")"
  "$bin" completion bash >"$bash_completion"
  "$bin" completion zsh >"$zsh_completion"
  if live_systemd; then systemctl daemon-reload; fi
}

do_install() {
  need_root "$@"
  check_node
  install_tools
  install_package
  lay_out_etc
  install_units
  say "installed: $("$bin" --version) at $bin"
  cat >&2 <<EOF
next:
  1. make this site's key:      netpol keygen --out /etc/netpol/keys/<site>.key
     (the policy names it privateKeyFile: keys/<site>.key; key files are looked up in /etc/netpol)
  2. write /etc/netpol/policy.yaml (example: /etc/netpol/policy.yaml.example) and check it:
                                netpol validate /etc/netpol/policy.yaml
  3. set NETPOL_SITE (and NETPOL_LISTEN: the tunnel address) in /etc/netpol/netpol.env
  4. apply once by hand:        netpol apply /etc/netpol/policy.yaml --site <site> --confirm 60
                                netpol confirm
  5. then at boot:              systemctl enable --now netpol-apply netpol-serve
     (netpol-serve holds the policy as netpol-watch does; without the endpoint: netpol-watch)
  with systemd-networkd:        systemctl restart systemd-networkd   (keeps netpol's routes)
EOF
}

# Takes netpol's network state down through netpol itself, scope by scope (the machine's own
# namespace is "host"; `--netns NAME` applies leave "netns-NAME" records).
# A scope's files are its record (SCOPE.json) and, beside it, an interrupted apply's journal, a
# pending revert and the compiled-policy cache (SCOPE.journal.json, .pending.json,
# .compiled.json): each scope is taken down once, whichever of them it has.
take_down() {
  [ -x "$bin" ] || return 0
  local file scope
  local -A seen=()
  for file in "$state"/*.json; do
    [ -e "$file" ] || continue
    scope="$(basename "$file" .json)"
    case "$scope" in *.journal | *.pending | *.compiled) scope="${scope%.*}" ;; esac
    [ -z "${seen[$scope]:-}" ] || continue
    seen[$scope]=1
    say "taking netpol's state down in $scope"
    if [ "$scope" = host ]; then
      [ -z "$DESTDIR" ] || die "refusing to take down the host's state from a DESTDIR install"
      "$bin" down --state-dir "$state"
    else
      "$bin" down --state-dir "$state" --netns "${scope#netns-}"
    fi
  done
}

do_uninstall() {
  need_root "$@"
  if live_systemd; then
    systemctl disable --now "${unit_names[@]}" 2>/dev/null || true
  fi
  take_down
  say "removing netpol"
  if [ -d "$DESTDIR$PREFIX/lib/node_modules/netpol" ]; then
    npm uninstall --global --prefix "$DESTDIR$PREFIX" --no-audit --no-fund netpol >/dev/null
  fi
  for u in "${unit_names[@]}"; do rm -f "$units/$u"; done
  rm -rf "$units/netpol-.service.d" "$state"
  rm -f "$networkd/netpol.conf" "$bash_completion" "$zsh_completion"
  if live_systemd; then systemctl daemon-reload; fi
  if [ "${1:-}" = --purge ]; then
    rm -rf "$etc"
    say "removed, with /etc/netpol"
  else
    say "removed; /etc/netpol (keys, token, policy) kept: --uninstall --purge removes it"
  fi
}

case "${1:-}" in
  "") do_install ;;
  --uninstall) do_uninstall "${2:-}" ;;
  -h | --help) sed -n '2,16p' "$0" ;;
  *) die "unknown option $1 (try --help)" ;;
esac
