#!/usr/bin/env bash
# gather-logs — bounded diagnostics from one node, inline and optionally as an archive:
#   system   hostname, kernel, OS, uptime, load, memory, disk usage
#   journal  the last `lines` journal lines (journalctl), for `units` and `since` when given;
#            when journalctl is absent or fails, the last lines of /var/log/syslog and
#            /var/log/messages instead (filtered by unit name when units are given)
#   dmesg    the last kernel ring buffer lines
# Every section is bounded (line count, bytes per line, bytes per section) and says whether it
# was truncated; a section that cannot be read becomes a warning and the result is partial.
# With archive=true the full excerpts are also written to a tar.gz in a private directory
# (mode 0700) on the node and reported as an artifact (path, size, sha256).
# Read-only except for that archive; a dry run reports what it would collect.
set -euo pipefail
# shellcheck source=../lib/bpcs.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/bpcs.sh" # @rune-include bpcs.sh

bpcs_init gather-logs 1.0.0
bpcs_params_allow units since lines archive
umask 077

readonly MAX_LINE_BYTES=2048
readonly MAX_JOURNAL_BYTES=262144
readonly MAX_FILES_BYTES=262144
readonly MAX_DMESG_BYTES=65536
readonly MAX_DMESG_LINES=1000
readonly SCAN_LINES=20000
# Where the syslog fallback reads from; overridable only for tests.
log_dir=${RUNE_GATHER_LOGS_LOG_DIR:-/var/log}

bpcs_param_array units string
units=(${BPCS_ARRAY[@]+"${BPCS_ARRAY[@]}"})
((${#units[@]} <= 32)) || bpcs_fail 2 INVALID_PARAMETERS "parameter 'units' lists more than 32 units"
for unit in ${units[@]+"${units[@]}"}; do
  [[ $unit =~ ^[A-Za-z0-9_.@:][A-Za-z0-9_.@:\\-]{0,255}$ ]] || {
    bpcs_json_object str unit "${unit:0:300}"
    bpcs_fail 2 INVALID_PARAMETERS "not a systemd unit name: '${unit:0:100}'" "$REPLY"
  }
done
bpcs_param_string since '' '^[A-Za-z0-9+-][A-Za-z0-9 :+._-]{0,63}$'
since=$REPLY
bpcs_param_int lines 200 1 5000
lines=$REPLY
bpcs_param_bool archive false
archive=$REPLY

journal_source=files
command -v journalctl >/dev/null 2>&1 && journal_source=journalctl
bpcs_out bool dry_run "$BPCS_DRY_RUN"

if bpcs_dry_run; then
  bpcs_json_array str ${units[@]+"${units[@]}"}
  units_json=$REPLY
  bpcs_json_object str journal_source "$journal_source" json units "$units_json" str since "$since" \
    int lines "$lines" bool dmesg true bool system_facts true bool archive "$archive"
  bpcs_out json would_collect "$REPLY"
  bpcs_success "dry run: would collect $lines lines from $journal_source, dmesg and system facts$([[ $archive == true ]] && echo ', and write an archive')"
fi

if [[ $archive == true ]]; then
  bpcs_require_cmd tar gzip
fi
bpcs_tmpdir
stage=$REPLY/stage
mkdir -p -- "$stage"

# Bounded command: `timeout` when available.
bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

# excerpt FILE MAX_BYTES — the last lines of FILE that fit in MAX_BYTES (each line cut at
# MAX_LINE_BYTES) as a JSON object {lines, line_count, truncated, omitted_lines} in REPLY.
excerpt() {
  local file=$1 max=$2 total=0 i kept=0 cut=0 first
  local -a all=()
  mapfile -t all <"$file"
  for ((i = ${#all[@]} - 1; i >= 0; i--)); do
    if ((${#all[i]} > MAX_LINE_BYTES)); then
      all[i]="${all[i]:0:MAX_LINE_BYTES} [line truncated]"
      cut=1
    fi
    total=$((total + ${#all[i]} + 1))
    ((total > max)) && break
    kept=$((kept + 1))
  done
  first=$((${#all[@]} - kept))
  local omitted=$first truncated=false
  ((omitted > 0 || cut)) && truncated=true
  bpcs_json_array str ${all[@]+"${all[@]:first}"}
  bpcs_json_object json lines "$REPLY" int line_count "$kept" bool truncated "$truncated" \
    int omitted_lines "$omitted"
}

# --- system facts ------------------------------------------------------------------------------
collect_system() {
  local host kernel os='' uptime_s=0 load='[]' mem_total=0 mem_avail=0 line key value rest
  host=$(uname -n 2>/dev/null || echo unknown)
  kernel=$(uname -sr 2>/dev/null || echo unknown)
  if [[ -r /etc/os-release ]]; then
    while IFS= read -r line; do
      if [[ $line == PRETTY_NAME=* ]]; then
        os=${line#PRETTY_NAME=}
        os=${os#\"}
        os=${os%\"}
      fi
    done </etc/os-release
  fi
  if [[ -r /proc/uptime ]]; then
    read -r value rest </proc/uptime || true
    [[ ${value%%.*} =~ ^[0-9]+$ ]] && uptime_s=${value%%.*}
  fi
  if [[ -r /proc/loadavg ]]; then
    local l1 l5 l15
    read -r l1 l5 l15 rest </proc/loadavg || true
    if [[ $l1 =~ ^[0-9.]+$ && $l5 =~ ^[0-9.]+$ && $l15 =~ ^[0-9.]+$ ]]; then
      bpcs_json_array num "$l1" "$l5" "$l15"
      load=$REPLY
    fi
  fi
  if [[ -r /proc/meminfo ]]; then
    while read -r key value rest; do
      case $key in
        MemTotal:) [[ $value =~ ^[0-9]+$ ]] && mem_total=$value ;;
        MemAvailable:) [[ $value =~ ^[0-9]+$ ]] && mem_avail=$value ;;
      esac
    done </proc/meminfo
  fi
  local -a disks=()
  local out fs blocks used avail capacity mountpoint n=0
  if out=$(bounded 10 df -P -k 2>/dev/null); then
    while read -r fs blocks used avail capacity mountpoint; do
      [[ $blocks =~ ^[0-9]+$ && $used =~ ^[0-9]+$ && $avail =~ ^[0-9]+$ ]] || continue
      [[ $blocks == 0 ]] && continue
      ((n++ < 50)) || break
      bpcs_json_object str filesystem "$fs" str mount_point "$mountpoint" int size_kb "$blocks" \
        int used_kb "$used" int available_kb "$avail" str capacity "$capacity"
      disks+=("$REPLY")
    done <<<"$out"
  fi
  bpcs_json_array json ${disks[@]+"${disks[@]}"}
  local disk_json=$REPLY
  bpcs_json_object int total_kb "$mem_total" int available_kb "$mem_avail"
  local mem_json=$REPLY
  bpcs_json_object str hostname "$host" str kernel "$kernel" str os "$os" int uptime_s "$uptime_s" \
    json load "$load" json memory "$mem_json" json disk "$disk_json"
  SYSTEM_JSON=$REPLY
  printf '%s\n' "$SYSTEM_JSON" >"$stage/system.json"
}

# --- journal -----------------------------------------------------------------------------------
collect_journal() {
  local -a args=(--no-pager --quiet -o short-iso -n "$lines")
  local unit err
  for unit in ${units[@]+"${units[@]}"}; do args+=(-u "$unit"); done
  [[ -n $since ]] && args+=(--since "$since")
  if bounded 60 journalctl "${args[@]}" >"$stage/journal.log" 2>"$BPCS_TMPDIR/journal.err"; then
    excerpt "$stage/journal.log" "$MAX_JOURNAL_BYTES"
    bpcs_json_object str source journalctl json excerpt "$REPLY"
    JOURNAL_JSON=$REPLY
    return 0
  fi
  err=$(head -c 500 -- "$BPCS_TMPDIR/journal.err")
  bpcs_warn "journalctl failed: ${err:-no message}; falling back to $log_dir files"
  return 1
}

# Last lines of syslog-style files, filtered by unit names when given.
collect_files() {
  local file name found=0 unit line
  local -a entries=()
  for name in syslog messages; do
    file=$log_dir/$name
    [[ -e $file ]] || continue
    found=1
    if [[ ! -r $file ]]; then
      bpcs_warn "cannot read $file"
      bpcs_json_object str path "$file" str error 'not readable'
      entries+=("$REPLY")
      continue
    fi
    if ((${#units[@]} > 0)); then
      local -a matched=()
      local -a scanned=()
      mapfile -t scanned < <(tail -n "$SCAN_LINES" -- "$file")
      for line in ${scanned[@]+"${scanned[@]}"}; do
        for unit in "${units[@]}"; do
          if [[ $line == *"${unit%.service}"* ]]; then
            matched+=("$line")
            break
          fi
        done
      done
      printf '%s\n' ${matched[@]+"${matched[@]:$((${#matched[@]} > lines ? ${#matched[@]} - lines : 0))}"} >"$stage/$name.log"
    else
      tail -n "$lines" -- "$file" >"$stage/$name.log"
    fi
    excerpt "$stage/$name.log" "$((MAX_FILES_BYTES / 2))"
    bpcs_json_object str path "$file" json excerpt "$REPLY"
    entries+=("$REPLY")
  done
  ((found)) || bpcs_warn "no journal and no syslog files in $log_dir"
  bpcs_json_array json ${entries[@]+"${entries[@]}"}
  local files_json=$REPLY
  bpcs_json_object str source files bool since_applied false json files "$files_json"
  JOURNAL_JSON=$REPLY
}

# --- dmesg ---------------------------------------------------------------------------------------
collect_dmesg() {
  local n=$lines err
  ((n > MAX_DMESG_LINES)) && n=$MAX_DMESG_LINES
  if ! command -v dmesg >/dev/null 2>&1; then
    bpcs_warn 'dmesg not found'
    DMESG_JSON='{"available":false,"error":"dmesg not found"}'
    return 0
  fi
  if bounded 10 dmesg >"$BPCS_TMPDIR/dmesg.all" 2>"$BPCS_TMPDIR/dmesg.err"; then
    tail -n "$n" -- "$BPCS_TMPDIR/dmesg.all" >"$stage/dmesg.log"
    excerpt "$stage/dmesg.log" "$MAX_DMESG_BYTES"
    bpcs_json_object bool available true json excerpt "$REPLY"
    DMESG_JSON=$REPLY
  else
    err=$(head -c 300 -- "$BPCS_TMPDIR/dmesg.err")
    bpcs_warn "dmesg failed: ${err:-no message}"
    bpcs_json_object bool available false str error "${err:-dmesg failed}"
    DMESG_JSON=$REPLY
  fi
}

SYSTEM_JSON='{}'
JOURNAL_JSON='{}'
DMESG_JSON='{}'
collect_system
bpcs_out json system "$SYSTEM_JSON"
if [[ $journal_source == files ]] || ! collect_journal; then
  collect_files
fi
bpcs_json_array str ${units[@]+"${units[@]}"}
bpcs_json_object json units "$REPLY" str since "$since" int lines_requested "$lines"
bpcs_out json request "$REPLY"
bpcs_out json journal "$JOURNAL_JSON"
collect_dmesg
bpcs_out json dmesg "$DMESG_JSON"

if [[ $archive == true ]]; then
  archive_dir=$(mktemp -d "${TMPDIR:-/tmp}/rune-gather-logs.XXXXXXXX")
  bpcs_now_ms
  archive_file=$archive_dir/gather-logs-$REPLY.tar.gz
  if ! tar -czf "$archive_file" -C "$stage" . 2>"$BPCS_TMPDIR/tar.err"; then
    err=$(head -c 300 -- "$BPCS_TMPDIR/tar.err")
    rm -rf -- "$archive_dir"
    bpcs_fail 1 PLUGIN_FAILED "could not write the archive: $err"
  fi
  bpcs_artifact "$archive_file" 'gather-logs archive: system.json, journal or syslog excerpts, dmesg'
  bpcs_json_object str path "$archive_file" str directory "$archive_dir"
  bpcs_out json archive "$REPLY"
fi

if bpcs_has_warnings; then
  bpcs_partial "collected diagnostics with warnings (see output_data.warnings)"
fi
bpcs_success "collected system facts, $lines-line log excerpt and dmesg"
