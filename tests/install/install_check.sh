#!/bin/sh
# `make install DESTDIR=...` lays out the files a system service needs, and each is valid:
# the unit (systemd-analyze verify), the sysusers.d and tmpfiles.d entries (applied to the
# staging root), the config (handoffd --check-config). A second install keeps an edited config.
#   install_check.sh SOURCE_DIR BUILD_DIR BUILD_TYPE
set -eu
src=$1
build=$2
type=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

install_into() {
  if ! make -C "$src" install DESTDIR="$stage" BUILD_DIR="$build" BUILD_TYPE="$type" \
      PREFIX=/usr/local >"$stage/make.log" 2>&1; then
    cat "$stage/make.log" >&2
    fail "make install failed"
  fi
}
install_into

prefix=$stage/usr/local
for f in bin/handoffd bin/handoffctl; do
  [ -x "$prefix/$f" ] || fail "$f is not installed as an executable"
done
for f in etc/handoff/handoffd.toml etc/handoff/handoffd.toml.example \
    lib/systemd/system/handoffd.service lib/sysusers.d/handoff.conf lib/tmpfiles.d/handoff.conf; do
  [ -s "$prefix/$f" ] || fail "$f is not installed"
done
unit=$prefix/lib/systemd/system/handoffd.service
grep -qx 'ExecStart=/usr/local/bin/handoffd --config /usr/local/etc/handoff/handoffd.toml' "$unit" ||
  fail "the unit does not start the installed handoffd with the installed config"
for line in Type=notify WatchdogSec=30s User=handoff Group=handoff NoNewPrivileges=true \
    ProtectSystem=strict StateDirectory=handoff RuntimeDirectory=handoff RuntimeDirectoryMode=0770 \
    Environment=GLIBC_TUNABLES=glibc.malloc.tcache_count=256; do
  grep -qx "$line" "$unit" || fail "the unit lacks $line"
done
"$prefix/bin/handoffd" --version | grep -q '^handoffd ' || fail "the installed handoffd does not run"

if command -v systemd-analyze >/dev/null 2>&1; then
  # Verified as installed, with ExecStart pointing into the staging root (where it is).
  sed "s|=/usr/local/bin/|=$prefix/bin/|" "$unit" >"$stage/handoffd.service"
  out=$(systemd-analyze verify --man=no "$stage/handoffd.service" 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
else
  echo "systemd-analyze not found: the unit is not verified"
fi
if command -v systemd-sysusers >/dev/null 2>&1 && command -v systemd-tmpfiles >/dev/null 2>&1; then
  mkdir -p "$stage/etc"
  systemd-sysusers --root="$stage" "$prefix/lib/sysusers.d/handoff.conf" >/dev/null 2>&1 ||
    fail "systemd-sysusers refused lib/sysusers.d/handoff.conf"
  grep -q '^handoff:' "$stage/etc/passwd" || fail "sysusers.d made no user handoff"
  grep -q '^handoff:' "$stage/etc/group" || fail "sysusers.d made no group handoff"
  systemd-tmpfiles --root="$stage" --create "$prefix/lib/tmpfiles.d/handoff.conf" 2>/dev/null ||
    fail "systemd-tmpfiles refused lib/tmpfiles.d/handoff.conf"
  [ "$(stat -c %a "$stage/run/handoff")" = 770 ] || fail "/run/handoff is not mode 0770"
else
  echo "systemd-sysusers or systemd-tmpfiles not found: their entries are not applied"
fi

# The installed config is valid (its group named, as on a host where sysusers.d ran).
config=$prefix/etc/handoff/handoffd.toml
grep -qx 'agent_socket_group = "handoff"' "$config" || fail "the service config sets no agent_socket_group"
sed 's/agent_socket_group = "handoff"/agent_socket_group = "root"/' "$config" >"$stage/check.toml"
"$prefix/bin/handoffd" --config "$stage/check.toml" --check-config >/dev/null ||
  fail "the installed config does not pass --check-config"

# Installing again keeps an operator's edits.
echo '# edited by the operator' >>"$config"
install_into
grep -q '^# edited by the operator$' "$config" || fail "a second install overwrote handoffd.toml"
echo "make install DESTDIR=... laid out and checked every file"
