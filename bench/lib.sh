# Shared by the bench scripts (sourced, not run): a free loopback port, the command
# line that runs each proxy subject on a port, and starting a subject with its target. The caller sets `work` (a scratch folder)
# and `ferrosocks`, `sslocal`, `merino` (the binaries); `floor` (bench's floorproxy) defaults
# to the one next to loadgen in `bin`.
#   FERROSOCKS_CONF_EXTRA='line'    a line added to ferrosocks' config
#   FERROSOCKS_ENV='VAR=value …'    environment for ferrosocks (e.g. an allocator tunable)
#   FERROSOCKS_BIN_B=path           a second ferrosocks, subject "ferrosocks-b" (A/B; default the first)
#   FERROSOCKS_ENV_B='VAR=value …'  its environment (default FERROSOCKS_ENV)
#   FLOOR_THREADS=N                 threads of the floor subject (default 1); FLOOR_THREADS_B
#                                   those of "floor-b" (default 2), to compare the two

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The command that runs subject $1 (ferrosocks, ferrosocks-b, sslocal, merino, floor,
# floor-b: the bare epoll relay, not a peer) on port $2;
# ferrosocks' config is written into $work.
command_of() {
    case $1 in
    ferrosocks | ferrosocks-b)
        {
            echo "internal: 127.0.0.1 port = $2"
            echo "socksmethod: none"
            [ -n "${FERROSOCKS_CONF_EXTRA:-}" ] && echo "$FERROSOCKS_CONF_EXTRA"
            echo "client pass { from: 127.0.0.0/8 to: 0/0 }"
            echo "socks pass { from: 127.0.0.0/8 to: 0/0 }"
        } >"$work/$1.conf"
        local b=$ferrosocks e=${FERROSOCKS_ENV:-}
        [ "$1" = ferrosocks-b ] && b=${FERROSOCKS_BIN_B:-$ferrosocks} && e=${FERROSOCKS_ENV_B:-$e}
        echo "env $e $b -f $work/$1.conf"
        ;;
    sslocal) echo "$sslocal -b 127.0.0.1:$2 --protocol socks" ;;
    merino) echo "$merino --no-auth -i 127.0.0.1 -p $2" ;;
    floor) echo "${floor:-$bin/floorproxy} 127.0.0.1:$2 --threads ${FLOOR_THREADS:-1}" ;;
    floor-b) echo "${floor:-$bin/floorproxy} 127.0.0.1:$2 --threads ${FLOOR_THREADS_B:-2}" ;;
    *)
        echo "unknown subject $1" >&2
        exit 2
        ;;
    esac
}

# start_subject SUBJECT [COMMAND]: a target server for SUBJECT and, unless it is `direct`,
# the proxy (run by the command line COMMAND prints, `command_of` by default), each on a free
# port; waits until the proxy accepts. Sets target[SUBJECT], port[SUBJECT], pid[SUBJECT]
# (associative arrays the caller declares: `declare -A port target pid`) and adds both
# processes to the caller's `pids` (which its cleanup ends).
start_subject() {
    local s=$1 cmd=${2:-command_of}
    target[$s]=$(free_port)
    "$bin/loadgen" serve "127.0.0.1:${target[$s]}" >/dev/null 2>&1 &
    pids+=($!)
    [ "$s" = direct ] && return 0
    port[$s]=$(free_port)
    # shellcheck disable=SC2046
    exec $("$cmd" "$s" "${port[$s]}") >/dev/null 2>"$work/$s.err" &
    pid[$s]=$!
    pids+=($!)
    for _ in $(seq 150); do
        (echo >"/dev/tcp/127.0.0.1/${port[$s]}") 2>/dev/null && break
        sleep 0.2
    done
}
