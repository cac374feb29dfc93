#!/usr/bin/env bash
# Installs Asterisk (PJSIP) plus the telephony tools Kommuncentral needs.
#
# Asterisk 22 LTS (the default, KC_ASTERISK=22):
#   - on a Debian release that ships Asterisk 20 or newer itself (e.g. unstable, which the
#     container image uses), the system package;
#   - elsewhere (Debian 12 has no Asterisk; unstable's needs a newer C library), a private
#     root made with debootstrap from Debian unstable, from the mirror this machine already
#     uses (never a host name of our own), at KC_ASTERISK_SYSROOT
#     (default /var/cache/kommuncentral/asterisk-22; kc/settings.py has the same default).
#     Made once and reused by every later run and every checkout; Kommuncentral runs
#     Asterisk from it (pbx/runtime.py). Nothing outside that directory changes.
# Asterisk 16 (KC_ASTERISK=16, and for the test suite's smoke subset with --with-test-tools):
#   Debian 11's security suite carries 16.28 and it installs on 12. We add that suite from
#   the configured mirror, pin it low so nothing else is taken from it, and install.
#
# Usage: install-asterisk.sh [--with-test-tools]
#   --with-test-tools  also Chromium, nginx-light and openssl (the reverse-proxy and TLS tests
#                      start their own nginx; the system's is stopped and disabled), and
#                      Asterisk 16 where the release can have it
# Idempotent: does nothing for what is already installed.
set -euo pipefail

default_sysroot=/var/cache/kommuncentral/asterisk-22
sysroot="${KC_ASTERISK_SYSROOT:-$default_sysroot}"
choice="${KC_ASTERISK:-22}"
with_tests=no
[[ "${1:-}" == "--with-test-tools" ]] && with_tests=yes
# What goes into the private root (python3: the fallback AGI runs inside it). A changed
# recipe makes a new root.
root_include="asterisk,asterisk-modules,asterisk-config,python3"
root_recipe="suite=sid variant=minbase include=${root_include}"

case "$choice" in 22|16) ;; *) echo "install-asterisk: KC_ASTERISK=$choice: choose 22 or 16" >&2; exit 2;; esac

# kamailio: the SIP front door of a cluster of Asterisk nodes (pbx/kamailio.py)
tools=(sip-tester espeak-ng sox libsox-fmt-mp3 kamailio)
# npm: axe-core for the accessibility tests
[[ $with_tests == yes ]] && tools+=(chromium nginx-light openssl npm)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# Major version of the system's installed Asterisk package (empty when none).
system_major() {
  installed asterisk || return 0
  dpkg-query -W -f='${Version}' asterisk | sed -E 's/^[0-9]+://; s/^([0-9]+).*/\1/'
}
root_made() { [[ -x "$sysroot/usr/sbin/asterisk" && "$(cat "$sysroot/.kc-root" 2>/dev/null)" == "$root_recipe" ]]; }
# Asterisk drops to the root's own "asterisk" user; its files on the host must belong to a user
# of its own there too (not to whichever host user has the same number), so the root's user
# takes the ids of the host's "asterisk" user (the one Asterisk 16's package creates).
ids_aligned() {
  local host root
  host=$(id -u asterisk 2>/dev/null):$(id -g asterisk 2>/dev/null) || return 1
  root=$(awk -F: '$1 == "asterisk" {print $3 ":" $4}' "$sysroot/etc/passwd")
  [[ "$host" == "$root" ]]
}
root_ready() { root_made && ids_aligned; }
align_ids() {
  if ! id -u asterisk >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "Asterisk PBX (Kommuncentral)" asterisk
  fi
  local huid hgid ruid rgid
  huid=$(id -u asterisk); hgid=$(id -g asterisk)
  ruid=$(chroot "$1" id -u asterisk); rgid=$(chroot "$1" id -g asterisk)
  [[ "$huid:$hgid" == "$ruid:$rgid" ]] && return 0
  find "$1" -xdev -uid "$ruid" -exec chown -h "$huid" {} +
  find "$1" -xdev -gid "$rgid" -exec chgrp -h "$hgid" {} +
  chroot "$1" groupmod -o -g "$hgid" asterisk
  chroot "$1" usermod -o -u "$huid" -g "$hgid" asterisk
  echo "install-asterisk: the root's asterisk user now has the host's ids $huid:$hgid"
}

. /etc/os-release
codename="${VERSION_CODENAME:-}"
major=$(system_major)

# What is missing?
missing_tools=()
# npm may come with another nodejs build (whose package conflicts with Debian's npm): the
# command is what the tests need.
have_tool() { installed "$1" || { [[ $1 == npm ]] && command -v npm >/dev/null 2>&1; }; }
for p in "${tools[@]}"; do have_tool "$p" || missing_tools+=("$p"); done
need22=no
need16=no
if [[ $choice == 22 ]]; then
  if [[ -z "$major" || "$major" -lt 20 ]] && ! root_ready; then need22=yes; fi
fi
if [[ $choice == 16 || ( $with_tests == yes && $codename == bookworm ) ]]; then
  [[ "$major" == 16 ]] || need16=yes
fi
if [[ ${#missing_tools[@]} -eq 0 && $need22 == no && $need16 == no ]]; then
  echo "install-asterisk: all present (Asterisk ${choice}; ${tools[*]})"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-asterisk: missing: ${missing_tools[*]} $([[ $need22 == yes ]] && echo "Asterisk 22") $([[ $need16 == yes ]] && echo "Asterisk 16"); run as root first" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# The mirror URI this machine uses: the first source whose suite is not a security suite.
main_mirror() {
  local src=/etc/apt/sources.list.d/debian.sources uri=""
  if [[ -f "$src" ]]; then
    uri=$(awk '
      /^URIs:/ {u=$2}
      /^Suites:/ && !/-security/ && u != "" {print u; exit}
    ' "$src")
  fi
  if [[ -z "$uri" ]]; then
    uri=$(grep -hE '^deb +[^ ]+ +[a-z]+ ' /etc/apt/sources.list 2>/dev/null | grep -v -- '-security' \
      | awk '{print $2}' | head -1 || true)
  fi
  echo "$uri"
}

# The system's Asterisk processes (package init scripts may start one) are not ours to run.
stop_system_asterisk() {
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now asterisk >/dev/null 2>&1 || true
    systemctl disable --now kamailio >/dev/null 2>&1 || true   # ours runs from var/ (kc asterisk)
  elif [[ -x /etc/init.d/asterisk ]]; then
    /etc/init.d/asterisk stop >/dev/null 2>&1 || true
  fi
}

apt_updated=no
apt_update() { [[ $apt_updated == yes ]] || { apt-get update -q; apt_updated=yes; }; }

if [[ ${#missing_tools[@]} -gt 0 ]]; then
  apt_update
  apt-get install -y -q --no-install-recommends "${missing_tools[@]}"
  if [[ " ${missing_tools[*]} " == *" nginx-light "* ]]; then
    # the tests run their own nginx on their own ports; the package's must not hold port 80
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
      systemctl disable --now nginx >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/nginx ]]; then
      /etc/init.d/nginx stop >/dev/null 2>&1 || true
    fi
  fi
  stop_system_asterisk   # the kamailio package may start a system Kamailio on port 5060
fi

if [[ $need22 == yes ]] && root_made; then
  align_ids "$sysroot"
elif [[ $need22 == yes ]]; then
  apt_update
  # Does the release itself ship Asterisk 20+? (Our pinned Debian 11 suite does not count.)
  sys_version=$(apt-cache madison asterisk 2>/dev/null | grep -v bullseye | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
    | sed -E 's/^[0-9]+://' | sort -V | tail -1 || true)
  if [[ -n "$sys_version" && "${sys_version%%.*}" -ge 20 && -z "$major" ]]; then
    apt-get install -y -q --no-install-recommends asterisk asterisk-modules asterisk-config
    stop_system_asterisk
  else
    command -v debootstrap >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends debootstrap
    mirror=$(main_mirror)
    if [[ -z "$mirror" ]]; then
      echo "install-asterisk: cannot find the configured Debian mirror" >&2
      exit 1
    fi
    mkdir -p "$(dirname "$sysroot")"
    exec 9>"$sysroot.lock"
    flock 9   # another checkout may be making it right now
    if ! root_made; then
      tmp="$sysroot.new.$$"
      rm -rf "$tmp"
      echo "install-asterisk: making the Asterisk 22 root $sysroot from Debian unstable (${mirror}); about 120 MB to download"
      start=$(date +%s)
      debootstrap --variant=minbase --include="$root_include" sid "$tmp" "$mirror"
      chroot "$tmp" apt-get clean
      version=$(chroot "$tmp" /usr/sbin/asterisk -V)
      case "$version" in "Asterisk 2"[0-9].*) ;; *) echo "install-asterisk: unexpected: $version" >&2; exit 1;; esac
      echo "$root_recipe" > "$tmp/.kc-root"
      rm -rf "$sysroot.old"
      [[ -e "$sysroot" ]] && mv "$sysroot" "$sysroot.old"
      mv "$tmp" "$sysroot"
      rm -rf "$sysroot.old"
      echo "install-asterisk: $version in $sysroot ($(( $(date +%s) - start )) s, $(du -sh "$sysroot" | cut -f1))"
    fi
    align_ids "$sysroot"
    flock -u 9
  fi
fi

if [[ $need16 == yes ]]; then
  if [[ "$codename" != "bookworm" ]]; then
    if [[ $choice == 16 ]]; then
      echo "install-asterisk: Asterisk 16 comes from Debian 11's security suite, installable on Debian 12 only" >&2
      exit 1
    fi
  elif [[ -n "$major" ]]; then
    echo "install-asterisk: the system has Asterisk $major; Asterisk 16 is not installed over it" >&2
    [[ $choice == 16 ]] && exit 1
  else
    src=/etc/apt/sources.list.d/debian.sources
    # Reuse the URI configured for the security suite (fallback: the main one + "-security").
    sec_uri=""
    if [[ -f "$src" ]]; then
      sec_uri=$(awk '
        /^URIs:/ {u=$2}
        /^Suites:/ && /-security/ {print u; exit}
      ' "$src")
    fi
    if [[ -z "$sec_uri" ]]; then
      sec_uri=$(grep -hoE '^deb +[^ ]+ +bookworm-security' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
    fi
    if [[ -z "$sec_uri" ]]; then
      main_uri=$(main_mirror)
      [[ -n "$main_uri" ]] && sec_uri="${main_uri%/}-security"
    fi
    if [[ -z "$sec_uri" ]]; then
      echo "install-asterisk: cannot find the configured Debian security mirror" >&2
      exit 1
    fi
    cat > /etc/apt/sources.list.d/kc-bullseye-security.sources <<SRC
Types: deb
URIs: ${sec_uri}
Suites: bullseye-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > /etc/apt/preferences.d/kc-bullseye-security <<PIN
# Only Asterisk (and the two old libraries it needs) come from Debian 11.
Package: *
Pin: release n=bullseye-security
Pin-Priority: 100
PIN
    apt-get update -q
    # "pkg/suite" takes just these from Debian 11; their dependencies resolve by the pins,
    # so only what bookworm lacks (libssl1.1, libldap-2.4-2) comes from there too.
    apt-get install -y -q --no-install-recommends \
      asterisk/bullseye-security asterisk-modules/bullseye-security asterisk-config/bullseye-security
    stop_system_asterisk
  fi
fi
echo "install-asterisk: done"
