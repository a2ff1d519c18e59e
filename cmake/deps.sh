#!/usr/bin/env bash
# Installs what building and testing mproc needs on Debian bookworm (run as root).
# Idempotent: apt is skipped entirely when every package is already installed.
set -euo pipefail
packages=(g++ cmake ninja-build ccache libcaf-dev libboost-dev libboost-system-dev
          libboost-filesystem-dev libssl-dev openssl iproute2 libgtest-dev libgmock-dev googletest libbenchmark-dev
          python3 procps clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
