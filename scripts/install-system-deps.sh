#!/bin/sh
# System packages kernelloop uses when present: bubblewrap (the default sandbox).
# Installs them with apt-get when running as root on Debian/Ubuntu; otherwise says what to do.
set -e
command -v bwrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap (sandbox) with apt-get..."
    apt-get install -y -q bubblewrap >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1
    } || echo "warning: could not install bubblewrap; the process sandbox will be used"
else
    echo "note: bubblewrap is not installed; workers will use the weaker process sandbox."
    echo "      Debian/Ubuntu: sudo apt-get install bubblewrap"
fi
