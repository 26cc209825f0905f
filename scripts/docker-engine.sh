#!/usr/bin/env bash
# Start or stop ctdrill's own Docker engine for the Docker test tier.
#
#   bash scripts/docker-engine.sh start    # install if missing, start, wait for `docker info`
#   bash scripts/docker-engine.sh stop     # stop it and remove its namespace
#   bash scripts/docker-engine.sh status   # exit 0 if it answers
#   bash scripts/docker-engine.sh env      # print DOCKER_HOST=... for eval
#
# dockerd runs inside its own network namespace (ctd-dockerd), entered with
# `nsenter --net` (under `ip netns exec` it fails: the cgroup mounts are hidden), so its
# bridges and iptables rules never touch the initial namespace. It has its own data-root,
# exec-root, pidfile and socket, so it cannot collide with any other engine on the host.
# --iptables=false: the lab's bridged traffic must pass the engine's namespace untouched.
# With Docker's rules there, br_netfilter sends every bridged lab packet through them
# (an internal network's isolation rules drop the gw's forwarded flows) and they load
# conntrack into ctd-dockerd, which would track every lab flow a second time.
# Run as root.
set -euo pipefail

NS=ctd-dockerd
STATE=/run/ctdrill/docker
DATA=/var/lib/ctdrill-docker
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
DOCKER=/usr/bin/docker
export DOCKER_HOST="unix://$SOCK"

answers() { [ -S "$SOCK" ] && timeout 5 "$DOCKER" info >/dev/null 2>&1; }

install_missing() {
    local need=()
    [ -x /usr/sbin/dockerd ] || need+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
    [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

start() {
    if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
    install_missing
    mkdir -p "$STATE" "$DATA"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "dockerd (pid $(cat "$PIDFILE")) runs but does not answer; see $LOG" >&2
        exit 5
    fi
    rm -f "$PIDFILE" "$SOCK"
    [ -e "/run/netns/$NS" ] || ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    # setsid: dockerd must outlive this script (and the shell that called it)
    setsid nsenter --net="/run/netns/$NS" /usr/sbin/dockerd \
        --data-root "$DATA" \
        --exec-root "$STATE/exec" \
        --pidfile "$PIDFILE" \
        --host "$DOCKER_HOST" \
        --iptables=false \
        --log-level warn \
        </dev/null >"$LOG" 2>&1 &
    local launcher=$! i
    for i in $(seq 1 120); do
        if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.25
    done
    echo "dockerd did not start (or not within 30 s); last lines of $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 5
}

stop() {
    if [ -f "$PIDFILE" ]; then
        local pid i
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$PIDFILE"
    fi
    # containerd-shims of our engine run under our exec-root: only those are ended
    if [ -e "/run/netns/$NS" ]; then
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$NS"
    fi
    rm -f "$SOCK"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) answers ;;
    env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
