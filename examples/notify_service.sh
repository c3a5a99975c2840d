#!/bin/sh
# Example process subsystem speaking sd_notify through the real systemd-notify
# (Debian package "systemd"). keepwire runs it in its own process group and
# passes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, exactly as systemd
# would for a Type=notify service with WatchdogSec=: any daemon written for
# systemd (sd_notify(3) in C, python-systemd, ...) works the same way.
#
# Config (the embedded default runs it):
#   { "name": "example-notify", "kind": "process", "command": "/bin/sh",
#     "args": ["examples/notify_service.sh"], "heartbeat": { "intervalMs": 1000, "timeoutMs": 5000 } }
set -eu

if ! command -v systemd-notify >/dev/null 2>&1; then
  echo "systemd-notify not found (install the systemd package)" >&2
  exit 1
fi

stopping=0
trap 'stopping=1' TERM INT

echo "example-notify: starting (pid $$)"
sleep 0.2                                   # pretend to initialise
systemd-notify --ready --status="serving"   # READY=1: keepwire marks it ready
echo "example-notify: ready"

# Heartbeat at half the watchdog timeout (sd_watchdog_enabled(3) recommends that).
usec=${WATCHDOG_USEC:-2000000}
ms=$((usec / 2000))
interval=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))

n=0
while [ "$stopping" -eq 0 ]; do
  n=$((n + 1))
  systemd-notify WATCHDOG=1                 # I am alive
  if [ $((n % 10)) -eq 0 ]; then
    systemd-notify STATUS="served $n ticks"
    echo "example-notify: tick $n"
  fi
  sleep "$interval" || true
done

systemd-notify STOPPING=1
echo "example-notify: stopping"
exit 0
