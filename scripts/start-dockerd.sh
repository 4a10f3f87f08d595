#!/bin/sh
# Start a Docker daemon for the docker sandbox when none answers (CI, fresh root machines).
# No network of its own: no bridge, no iptables rules (the sandbox runs --network none anyway,
# and the CI machine must not get NAT rules). Nothing is pulled: the sandbox's default image is
# made locally (sandbox/backends/docker.py). Exits 0 once `docker info` answers, 1 if it cannot.
command -v docker >/dev/null 2>&1 || { echo "docker client not installed"; exit 1; }
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null 2>&1 || { echo "dockerd not installed"; exit 1; }
[ "$(id -u)" = "0" ] || { echo "dockerd needs root here; start it yourself"; exit 1; }
log=${DOCKERD_LOG:-/tmp/kernelloop-dockerd.log}
nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
for _ in $(seq 1 30); do
    docker info >/dev/null 2>&1 && { echo "dockerd started (log: $log)"; exit 0; }
    sleep 1
done
echo "dockerd did not answer within 30 s; last lines of $log:"
tail -5 "$log"
exit 1
