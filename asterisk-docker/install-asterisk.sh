#!/usr/bin/env bash
# Installs Asterisk (PJSIP) plus the telephony tools Kommuncentral needs.
#
# Debian 12 has no Asterisk package; Debian 11's security suite carries 16.28 and it
# installs on 12. We add that suite from the mirror this machine already uses (never a
# host name of our own), pin it low so nothing else is taken from it, and install.
# On a Debian release that still ships Asterisk (e.g. unstable, used by the container
# image) the package comes from the release itself.
#
# Usage: install-asterisk.sh [--with-test-tools]
# Idempotent: does nothing for packages already installed.
set -euo pipefail

want=(asterisk asterisk-modules asterisk-config sip-tester espeak-ng sox libsox-fmt-mp3)
if [[ "${1:-}" == "--with-test-tools" ]]; then
  want+=(chromium)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-asterisk: all present (${want[*]})"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-asterisk: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
codename="${VERSION_CODENAME:-}"

if [[ "$codename" == "bookworm" ]]; then
  src=/etc/apt/sources.list.d/debian.sources
  # Reuse the URI configured for the security suite (fallback: the main one + "-security").
  sec_uri=""
  if [[ -f "$src" ]]; then
    sec_uri=$(awk '
      /^URIs:/ {u=$2}
      /^Suites:/ && /-security/ {print u; exit}
    ' "$src")
    if [[ -z "$sec_uri" ]]; then
      main_uri=$(awk '/^URIs:/ {print $2; exit}' "$src")
      [[ -n "$main_uri" ]] && sec_uri="${main_uri%/}-security"
    fi
  fi
  if [[ -z "$sec_uri" ]]; then
    sec_uri=$(grep -hoE '^deb +[^ ]+ +bookworm-security' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
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
  others=()
  ast=()
  for p in "${missing[@]}"; do
    case "$p" in asterisk|asterisk-modules|asterisk-config) ast+=("$p");; *) others+=("$p");; esac
  done
  if [[ ${#others[@]} -gt 0 ]]; then
    apt-get install -y -q --no-install-recommends "${others[@]}"
  fi
  if [[ ${#ast[@]} -gt 0 ]]; then
    # "pkg/suite" takes just these from Debian 11; their dependencies resolve by the pins,
    # so only what bookworm lacks (libssl1.1, libldap-2.4-2) comes from there too.
    apt-get install -y -q --no-install-recommends \
      asterisk/bullseye-security asterisk-modules/bullseye-security asterisk-config/bullseye-security
  fi
else
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The system service is not ours to run: Kommuncentral starts Asterisk from its own tree.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  systemctl disable --now asterisk >/dev/null 2>&1 || true
fi
pkill -x asterisk >/dev/null 2>&1 || true
echo "install-asterisk: installed ${missing[*]}"
