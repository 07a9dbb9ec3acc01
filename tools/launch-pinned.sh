#!/usr/bin/env bash
# Production launch of livestack on a tuned host: checks what makes latency unpredictable, prints
# what is off, then starts `livestack run` with the harness on an isolated CPU.
#
#   tools/launch-pinned.sh [--harness-cpu N] [--other-cpus LIST] [--strict] [--dry-run] [CONFIG.toml] [-- extra args]
#
# The harness CPU: --harness-cpu, else CONFIG's [cpu] harness, else the last CPU (both given and
# different: an error). --dry-run runs the checks and prints the config and command it would start.
# Unknown flags and a second CONFIG are errors (exit 2); nothing is left in /tmp.
#
# Checks (each prints OK or WARN with the fix):
#   - isolated CPUs (isolcpus= / nohz_full= / rcu_nocbs= on the kernel command line) include the harness CPU
#   - CPU frequency governor of the harness CPU is "performance"
#   - transparent huge pages are not "always" (khugepaged compaction stalls)
#   - memlock limit allows mlockall (ulimit -l unlimited)
#   - SCHED_FIFO is permitted (rtprio limit or CAP_SYS_NICE)
#   - irqbalance is not running (it moves interrupts onto the isolated CPU)
#   - the stack runs as a dedicated user, not root and not a user with other processes: the trust
#     boundary is the uid (shm segments and ipc sockets are 0600, so any process of the same uid can
#     map the rings; each ring takes one producer and one consumer, but a same-uid process can still
#     read them or take a role first). Recommended: useradd --system --no-create-home livestack;
#     sudo -u livestack tools/launch-pinned.sh ...
# --strict turns any WARN into a refusal to start.
set -u

harness_cpu=""
other_cpus=""
strict=0
dry=0
config=""
extra=()
die() { echo "launch-pinned: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] && [[ "$2" != --* ]] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --harness-cpu) need "$@"; harness_cpu="$2"; shift 2 ;;
        --harness-cpu=*) harness_cpu="${1#*=}"; shift ;;
        --other-cpus) need "$@"; other_cpus="$2"; shift 2 ;;
        --other-cpus=*) other_cpus="${1#*=}"; shift ;;
        --strict) strict=1; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) [ -z "$config" ] || die "one CONFIG only: got '$config' and '$1' (unknown options go after --)"
           config="$1"; shift ;;
    esac
done
[ -z "$config" ] || [ -f "$config" ] || die "config file '$config' does not exist"

here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.venv/bin/livestack"
py="$here/.venv/bin/python"
[ -x "$bin" ] || bin=livestack
[ -x "$py" ] || py=python3
ncpu=$(nproc --all)
cmdline=$(cat /proc/cmdline 2>/dev/null || echo "")
isolated=$(cat /sys/devices/system/cpu/isolated 2>/dev/null || echo "")
cfg_harness=""
if [ -n "$config" ]; then
    read -r has_cpu cfg_harness < <("$py" -c 'import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
print(int("cpu" in c), c.get("cpu", {}).get("harness", -1))' "$config" 2>/dev/null) \
        || die "cannot read '$config' as TOML (livestack config check '$config' says why)"
    [ "$cfg_harness" = -1 ] && cfg_harness=""
    if [ "$has_cpu" = 1 ] && [ -z "$cfg_harness" ] && [ -n "$harness_cpu" ]; then
        die "$config has a [cpu] table without 'harness': add harness = $harness_cpu to it (not --harness-cpu)"
    fi
fi
if [ -n "$harness_cpu" ] && [ -n "$cfg_harness" ] && [ "$harness_cpu" != "$cfg_harness" ]; then
    die "--harness-cpu $harness_cpu disagrees with [cpu] harness = $cfg_harness in $config: give one of them"
fi
[ -z "$harness_cpu" ] && harness_cpu=${cfg_harness:-$((ncpu - 1))}
[[ "$harness_cpu" =~ ^[0-9]+$ ]] || die "--harness-cpu '$harness_cpu' is not a CPU number"
[ -z "$other_cpus" ] || [[ "$other_cpus" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] \
    || die "--other-cpus '$other_cpus' is not a CPU list (e.g. 0-2,4)"
if [ -z "$other_cpus" ]; then
    other_cpus=$(seq -s, 0 $((ncpu - 1)) | tr ',' '\n' | grep -vx "$harness_cpu" | paste -sd, -)
    [ -z "$other_cpus" ] && other_cpus="$harness_cpu"
fi
warns=0
ok()   { printf '  OK    %s\n' "$*"; }
warn() { printf '  WARN  %s\n' "$*"; warns=$((warns + 1)); }

in_list() {  # in_list CPU "0-3,7"
    local cpu=$1 part
    IFS=, read -ra parts <<< "$2"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then
            [ "$cpu" -ge "${part%-*}" ] && [ "$cpu" -le "${part#*-}" ] && return 0
        elif [ -n "$part" ] && [ "$cpu" -eq "$part" ]; then
            return 0
        fi
    done
    return 1
}

echo "livestack launch: harness on CPU $harness_cpu, other processes on CPUs $other_cpus ($ncpu CPUs)"
if [ "$harness_cpu" -ge "$ncpu" ] || [ "$harness_cpu" -lt 0 ]; then
    echo "  ERROR harness CPU $harness_cpu does not exist (CPUs 0..$((ncpu - 1)))"; exit 2
fi
if [ -n "$isolated" ] && in_list "$harness_cpu" "$isolated"; then
    ok "CPU $harness_cpu is isolated (isolated: $isolated)"
else
    warn "CPU $harness_cpu is not isolated: boot with isolcpus=$harness_cpu nohz_full=$harness_cpu rcu_nocbs=$harness_cpu"
fi
if echo "$cmdline" | grep -q "nohz_full="; then ok "nohz_full set ($(echo "$cmdline" | grep -o 'nohz_full=[^ ]*'))"
else warn "nohz_full not set: the scheduler tick interrupts the harness every 1-4 ms"; fi
gov_file=/sys/devices/system/cpu/cpu$harness_cpu/cpufreq/scaling_governor
if [ -r "$gov_file" ]; then
    gov=$(cat "$gov_file")
    [ "$gov" = performance ] && ok "governor performance" || warn "governor is $gov: echo performance > $gov_file"
else
    warn "no cpufreq governor visible (virtual machine?): frequency scaling unknown"
fi
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo "unknown")
case "$thp" in
    *"[always]"*) warn "transparent huge pages 'always': echo madvise > /sys/kernel/mm/transparent_hugepage/enabled" ;;
    unknown) warn "transparent huge pages state unknown" ;;
    *) ok "transparent huge pages: $thp" ;;
esac
memlock=$(ulimit -l)
[ "$memlock" = unlimited ] && ok "memlock unlimited" || warn "memlock limit $memlock KiB: ulimit -l unlimited (or limits.conf memlock) for mlockall"
rtprio=$(ulimit -r 2>/dev/null || echo 0)
if [ "$(id -u)" = 0 ] || [ "$rtprio" != 0 ]; then ok "SCHED_FIFO permitted (uid $(id -u), rtprio $rtprio)"
else warn "SCHED_FIFO not permitted: ulimit -r 1 (limits.conf rtprio) or CAP_SYS_NICE"; fi
if pgrep -x irqbalance >/dev/null 2>&1; then warn "irqbalance is running: stop it and pin IRQs away from CPU $harness_cpu"
else ok "irqbalance not running"; fi
# Trust boundary: the uid. A dedicated user runs nothing but livestack; count what else runs as us
# (our own ancestors included: a login shell of a shared user is one).
me=$(id -un 2>/dev/null || id -u)
if [ "$(id -u)" = 0 ]; then
    warn "running as root: every process on the host is inside the stack's trust boundary; run as a dedicated user (useradd --system --no-create-home livestack; sudo -u livestack $0 ...)"
else
    others=$(ps -o pid=,comm= -u "$(id -u)" 2>/dev/null | awk -v self=$$ '$1 != self' | grep -v -e ' ps$' -e ' awk$' -e ' grep$' -e ' wc$' | wc -l)
    if [ "$others" -gt 1 ]; then  # this script's own subshell is one
        warn "user $me runs $others other processes: a shared user can attach to the rings and control socket (0600 means same uid); run as a dedicated user (useradd --system --no-create-home livestack; sudo -u livestack $0 ...)"
    else
        ok "dedicated user $me (no other processes of uid $(id -u))"
    fi
fi

if [ "$warns" -gt 0 ] && [ "$strict" = 1 ]; then
    echo "$warns check(s) failed and --strict was given: not starting"; exit 1
fi
[ "$warns" -gt 0 ] && echo "$warns check(s) off: starting anyway (use --strict to refuse)"

# The merged config goes to an unlinked temp file read through /dev/fd: nothing stays in /tmp,
# even though exec replaces this shell (an EXIT trap would never run).
overrides=$(mktemp --suffix=.toml) || die "cannot create a temp file"
first_other=${other_cpus%%,*}
first_other=${first_other%%-*}
{
    [ -n "$config" ] && cat "$config"
    if ! { [ -n "$config" ] && grep -q '^\[cpu\]' "$config"; }; then
        printf '\n[cpu]\nharness = %s\nfeed = %s\nvenue = %s\nwriter = %s\ncontrol = %s\nmonitor = %s\n' \
            "$harness_cpu" "$first_other" "$first_other" "$first_other" "$first_other" "$first_other"
    fi
    if ! { [ -n "$config" ] && grep -q '^\[harness\]' "$config"; }; then
        printf '\n[harness]\nsched_fifo = true\nmlockall = true\n'
    fi
} > "$overrides"
exec 3< "$overrides"
rm -f "$overrides"
# the supervisor and every process without a [cpu] entry run on other_cpus; each process with a
# [cpu] entry (the harness always) pins itself to it (sched_setaffinity is not bound by taskset)
echo "CPU set applied: supervisor on CPUs $other_cpus (taskset -c $other_cpus), harness pinned to CPU $harness_cpu"
echo "starting: taskset -c $other_cpus $bin run /dev/fd/3 (${config:-embedded default} + [cpu]/[harness] above) ${extra[*]:-}"
if [ "$dry" = 1 ]; then
    echo "--- merged config (dry run: not starting) ---"
    cat <&3
    exit 0
fi
exec taskset -c "$other_cpus" "$bin" run /dev/fd/3 "${extra[@]}"
