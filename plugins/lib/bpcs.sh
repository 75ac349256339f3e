# shellcheck shell=bash
# bpcs.sh — a small library for writing RUNE plugins (BPCS v1) in Bash.
# @rune-library drop-unused-functions
# @rune-library strip-comment-lines
# (the assembler leaves out the functions a plugin never names and this file's comment lines:
# Bash reads and parses every line; the documentation stays here.)
#
# Needs only bash >= 4 and coreutils on the node. jq is used when present to parse the request;
# without it a pure-Bash JSON parser takes over (both give identical results). The library:
#   - moves stdout to fd 3 and points fd 1 at stderr, so nothing but the one result document can
#     reach stdout (a stray `echo` becomes a log line);
#   - reads the RCS request from stdin once (bounded), validates the envelope, exposes values;
#   - builds JSON safely (escaping, invalid UTF-8 replaced by U+FFFD);
#   - prints exactly ONE BPCS result and exits with the matching BPCS exit code, also when the
#     plugin dies unexpectedly (EXIT/ERR/signal traps).
# Nothing read from the request is ever evaluated: no eval, values never reach arithmetic before
# they are checked against a strict pattern, and they are passed to commands only as separate,
# quoted arguments. Public names: bpcs_* functions and BPCS_* variables; _bpcs_* is internal.
# Functions that return a value set REPLY (no subshell, no stdout).
# See docs/writing-plugins.md for the guide.

if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "bpcs.sh: bash >= 4 is required" >&2
  exit 3
fi

# Byte semantics for every string operation, and stable (English) output from the tools we parse.
LC_ALL=C
export LC_ALL

# The stdout guard: the real stdout is kept on fd 3 for the result; fd 1 now goes to stderr.
exec 3>&1 1>&2

# --- state -----------------------------------------------------------------------------------

# (Assignments are grouped into few commands: Bash pays for every command it runs.)
BPCS_LIB_VERSION=1.0.0 BPCS_PLUGIN_NAME=${BPCS_PLUGIN_NAME:-} BPCS_PLUGIN_VERSION=${BPCS_PLUGIN_VERSION:-} \
  BPCS_TRACE_ID='' BPCS_MESSAGE_ID='' BPCS_ACTION='' BPCS_NODE='' BPCS_TRANSPORT='' BPCS_DEPLOY_MODE='' \
  BPCS_DRY_RUN=false BPCS_TIMEOUT_MS=0 BPCS_JSON_PARSER=${BPCS_JSON_PARSER:-} BPCS_TMPDIR='' BPCS_INPUT='' \
  BPCS_ARRAY=()
# Maximum accepted request size and maximum result size, in bytes; requests at least
# BPCS_JQ_THRESHOLD_BYTES large are parsed with jq when it is on PATH (smaller ones in Bash).
BPCS_MAX_INPUT_BYTES=${BPCS_MAX_INPUT_BYTES:-1048576} BPCS_MAX_OUTPUT_BYTES=${BPCS_MAX_OUTPUT_BYTES:-1000000} \
  BPCS_MAX_DEPTH=64 BPCS_JQ_THRESHOLD_BYTES=65536 _BPCS_TMPDIR_READY=0 REPLY=''
# Read once here so linters see the public variables as used (plugins read them).
: "$BPCS_LIB_VERSION" "${BPCS_TRANSPORT}" "${BPCS_DEPLOY_MODE}" "${BPCS_TIMEOUT_MS}" "${BPCS_INPUT}" "${BPCS_MAX_DEPTH}"

# _BPCS_SALVAGE: 1 while the ids may still have to be salvaged from the raw request (see
# _bpcs_salvage_ids).
_BPCS_UNTRACED=ffffffffffffffffffffffffffffffff _BPCS_SEP=$'\x1f' _BPCS_EMITTED=0 _BPCS_MAIN_PID=$BASHPID \
  _BPCS_SUMMARY='' _BPCS_OUT_M=() _BPCS_ARTIFACTS=() _BPCS_WARNINGS=() _BPCS_ERR_LINE='' _BPCS_ERR_CMD='' \
  _BPCS_ERR_STATUS='' _BPCS_PARSE_ERROR='' _BPCS_SALVAGE=0 _bpcs_rest='' _bpcs_ppath=''
# _BPCS_T/_V/_K: the parsed request, flattened: path -> type / value / child keys. A path is "$"
# followed by one component per level, each preceded by \x1f; object keys are stored
# JSON-escaped (canonical). _BPCS_J: JSON text of some paths, as _bpcs_serialize would write it,
# for bpcs_json_at: what the canonical fast path could cut from the request (see
# _bpcs_parse_canonical).
declare -A _BPCS_OUT=() _BPCS_T=() _BPCS_V=() _BPCS_K=() _BPCS_J=()
# The envelope of a canonical request, before its table entries exist (_bpcs_fill_envelope):
# message_id trace_id timestamp component version host action node transport deploy_mode
# schema_version dry_run timeout_ms; _BPCS_LAZY=1 while the entries are still to be made.
_BPCS_E=() _BPCS_LAZY=''

_BPCS_RE_UUID='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' \
  _BPCS_RE_ACTION='^[a-z0-9][a-z0-9-]{0,63}$' \
  _BPCS_RE_SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$' \
  _BPCS_RE_NUMBER='^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?' \
  _BPCS_RE_INT='^-?(0|[1-9][0-9]{0,14})(\.0+)?$' \
  _BPCS_RE_CODE='^[A-Z][A-Z0-9_]{2,63}$'
# _BPCS_NOT_PLAIN: a key that is stored as written has none of these (no control characters, no
# high bytes; no backslash either, which the scan excludes already). _BPCS_SPECIAL: a string
# that JSON escaping leaves as it is has none of these (controls, high bytes, " and \).
_BPCS_HIGH=$'[\x80-\xff]' _BPCS_UUID_SHAPE='????????-????-????-????-????????????' _BPCS_CTRL=$'[\x01-\x1f]' \
  _BPCS_NOT_PLAIN=$'[\x01-\x1f\x80-\xff]' _BPCS_SPECIAL=$'[\x01-\x1f\x80-\xff"\\\\]'

# Status 0 when $1 matches _BPCS_RE_UUID, ^[0-9a-f]{32}$ (a trace id) or _BPCS_RE_ACTION. The same sets as
# those regexes, checked with glob patterns: Bash compiles the regex of every `=~` it evaluates,
# which costs several times more than these on the hot path of every run.
_bpcs_is_uuid() {
  local hex=${1//-/}
  # shellcheck disable=SC2053 # _BPCS_UUID_SHAPE is a glob pattern, unquoted on purpose
  [[ ${#1} == 36 && ${#hex} == 32 && $1 == $_BPCS_UUID_SHAPE && $hex != *[!0-9a-f]* ]]
}
_bpcs_is_trace() {
  [[ ${#1} == 32 && $1 != *[!0-9a-f]* ]]
}
_bpcs_is_action() {
  [[ -n $1 && ${#1} -le 64 && $1 != -* && $1 != *[!a-z0-9-]* ]]
}

# --- logging ---------------------------------------------------------------------------------

# bpcs_log MESSAGE... — one log line on stderr.
bpcs_log() {
  printf '%s: %s\n' "${BPCS_PLUGIN_NAME:-plugin}" "$*" >&2
}

# bpcs_warn MESSAGE — log a warning and add it to output_data.warnings.
bpcs_warn() {
  bpcs_log "warning: $1"
  _BPCS_WARNINGS+=("$1")
}

# bpcs_has_warnings — succeeds when bpcs_warn was called (e.g. to choose partial over success).
bpcs_has_warnings() {
  ((${#_BPCS_WARNINGS[@]} > 0))
}

# --- time ------------------------------------------------------------------------------------

# bpcs_now_ms — milliseconds since the epoch in REPLY.
bpcs_now_ms() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/[!0-9]/}
    REPLY=$((10#${t:0:${#t}-3}))
    return 0
  fi
  local t
  t=$(date +%s%N 2>/dev/null) || t=
  if [[ $t =~ ^[0-9]{19}$ ]]; then
    REPLY=$((10#${t:0:13}))
  else
    REPLY=$(($(date +%s) * 1000))
  fi
}

_bpcs_timestamp() {
  local ts now=${EPOCHREALTIME:-}
  # Bash 5: no process (printf's strftime in UTC); older bash: date.
  local seconds=${now%%[.,]*} fraction=${now#*[.,]}
  if [[ -n $seconds && $seconds != *[!0-9]* && $now == *[.,]* && ${fraction:0:3} == [0-9][0-9][0-9] ]]; then
    TZ=UTC0 printf -v ts '%(%Y-%m-%dT%H:%M:%S)T' "$seconds"
    REPLY=$ts.${fraction:0:3}Z
    return 0
  fi
  _bpcs_timestamp_date
}

_bpcs_timestamp_date() { # @rune-cold: bash without EPOCHREALTIME
  local ts
  ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ 2>/dev/null) || ts=
  if [[ ! $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]; then
    ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  fi
  REPLY=$ts
}

# --- JSON strings ----------------------------------------------------------------------------

# Replaces every byte that is not part of a valid UTF-8 sequence with U+FFFD. Fast path: no high
# bytes, or every high byte belongs to a valid sequence (checked with global pattern
# substitutions, which run in C); the byte-by-byte path runs only on lines with invalid bytes.
# The sequence patterns are locals of bpcs_utf8_sanitize, which its two helpers see (dynamic
# scope): a run that never meets a high byte never assigns them.

_bpcs_utf8_masked() { # @rune-cold: invalid UTF-8 only
  local t=$1
  t=${t//$_BPCS_U2/A}
  if [[ $t == *[$'\xe0'-$'\xef']* ]]; then
    t=${t//$_BPCS_U3A/A}
    t=${t//$_BPCS_U3B/A}
    t=${t//$_BPCS_U3C/A}
  fi
  if [[ $t == *[$'\xf0'-$'\xf4']* ]]; then
    t=${t//$_BPCS_U4A/A}
    t=${t//$_BPCS_U4B/A}
    t=${t//$_BPCS_U4C/A}
  fi
  REPLY=$t
}

_bpcs_utf8_fix_line() { # @rune-cold: invalid UTF-8 only
  local line=$1 out='' ascii q n
  while [[ -n $line ]]; do
    # shellcheck disable=SC2295 # _BPCS_HIGH is a bracket pattern, unquoted on purpose
    ascii=${line%%$_BPCS_HIGH*}
    out+=$ascii
    line=${line:${#ascii}}
    [[ -z $line ]] && break
    q=${line:0:4}
    n=1
    if [[ $q == $_BPCS_U2* ]]; then
      n=2
    elif [[ $q == $_BPCS_U3A* || $q == $_BPCS_U3B* || $q == $_BPCS_U3C* ]]; then
      n=3
    elif [[ $q == $_BPCS_U4A* || $q == $_BPCS_U4B* || $q == $_BPCS_U4C* ]]; then
      n=4
    fi
    if ((n == 1)); then
      out+=$_BPCS_FFFD
    else
      out+=${line:0:n}
    fi
    line=${line:n}
  done
  REPLY=$out
}

# bpcs_utf8_sanitize STRING — STRING with invalid UTF-8 replaced by U+FFFD, in REPLY.
bpcs_utf8_sanitize() { # @rune-cold: text with high bytes only
  local s=$1
  local _BPCS_U2=$'[\xc2-\xdf][\x80-\xbf]' \
    _BPCS_U3A=$'\xe0[\xa0-\xbf][\x80-\xbf]' \
    _BPCS_U3B=$'[\xe1-\xec\xee\xef][\x80-\xbf][\x80-\xbf]' \
    _BPCS_U3C=$'\xed[\x80-\x9f][\x80-\xbf]' \
    _BPCS_U4A=$'\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]' \
    _BPCS_U4B=$'[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]' \
    _BPCS_U4C=$'\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf]' \
    _BPCS_FFFD=$'\xef\xbf\xbd'
  if [[ $s != *$_BPCS_HIGH* ]]; then
    REPLY=$s
    return 0
  fi
  _bpcs_utf8_masked "$s"
  if [[ $REPLY != *$_BPCS_HIGH* ]]; then
    REPLY=$s
    return 0
  fi
  local -a parts=()
  local out='' line piece first=1
  mapfile -t parts <<<"$s"
  for line in ${parts[@]+"${parts[@]}"}; do
    ((first)) || out+=$'\n'
    first=0
    if [[ $line == *$_BPCS_HIGH* ]]; then
      # Long lines are handled in bounded pieces so the byte loop stays linear.
      while ((${#line} > 4096)); do
        piece=${line:0:4096}
        line=${line:4096}
        _bpcs_utf8_fix_line "$piece"
        out+=$REPLY
      done
      _bpcs_utf8_fix_line "$line"
      line=$REPLY
    fi
    out+=$line
  done
  # mapfile drops a final empty line; keep a trailing newline the input had.
  [[ $s == *$'\n' ]] && out+=$'\n'
  REPLY=$out
}

# bpcs_json_escape STRING — the JSON-escaped form of STRING (without quotes) in REPLY.
bpcs_json_escape() {
  if [[ $1 != *$_BPCS_SPECIAL* ]]; then
    REPLY=$1
    return 0
  fi
  local s=$1
  if [[ $s == *$_BPCS_HIGH* ]]; then
    bpcs_utf8_sanitize "$s"
    s=$REPLY
  fi
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  if [[ $s == *$_BPCS_CTRL* ]]; then
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//$'\b'/\\b}
    s=${s//$'\f'/\\f}
    [[ $s != *$_BPCS_CTRL* ]] || _bpcs_escape_controls
  fi
  REPLY=$s
}

# The other control characters as \u00XX, in the caller's (bpcs_json_escape's) s.
_bpcs_escape_controls() { # @rune-cold: control characters other than \n \r \t \b \f
  local i ch hex
  for ((i = 1; i < 32; i++)); do
    printf -v hex '%02x' "$i"
    # shellcheck disable=SC2059 # hex is two hex digits computed above
    printf -v ch "\\x$hex"
    [[ $s == *"$ch"* ]] && s=${s//"$ch"/\\u00$hex}
  done
  return 0
}

# bpcs_json_string STRING — STRING as a quoted JSON string in REPLY.
bpcs_json_string() {
  if [[ $1 != *$_BPCS_SPECIAL* ]]; then
    REPLY="\"$1\""
    return 0
  fi
  bpcs_json_escape "$1"
  REPLY="\"$REPLY\""
}

# Code point -> UTF-8 bytes in REPLY (locale independent).
_bpcs_utf8_encode() { # @rune-cold: \u escapes only
  local cp=$1 fmt
  if ((cp < 0x80)); then
    printf -v fmt '\\x%02x' "$cp"
  elif ((cp < 0x800)); then
    printf -v fmt '\\x%02x\\x%02x' $((0xc0 | cp >> 6)) $((0x80 | (cp & 0x3f)))
  elif ((cp < 0x10000)); then
    printf -v fmt '\\x%02x\\x%02x\\x%02x' $((0xe0 | cp >> 12)) $((0x80 | (cp >> 6 & 0x3f))) \
      $((0x80 | (cp & 0x3f)))
  else
    printf -v fmt '\\x%02x\\x%02x\\x%02x\\x%02x' $((0xf0 | cp >> 18)) $((0x80 | (cp >> 12 & 0x3f))) \
      $((0x80 | (cp >> 6 & 0x3f))) $((0x80 | (cp & 0x3f)))
  fi
  # shellcheck disable=SC2059 # fmt holds only \xHH escapes built above
  printf -v REPLY "$fmt"
}

# bpcs_json_unescape ESCAPED — decodes the body of a JSON string (escapes, \uXXXX, surrogate
# pairs) into REPLY. \u0000 and lone surrogates become U+FFFD. Returns 1 on an invalid escape.
bpcs_json_unescape() { # @rune-cold: strings with backslashes only
  local s=$1 out='' c hex cp lo
  while [[ $s == *\\* ]]; do
    out+=${s%%\\*}
    s=${s#*\\}
    c=${s:0:1}
    s=${s:1}
    case $c in
      '"') out+='"' ;;
      \\) out+=\\ ;;
      /) out+=/ ;;
      b) out+=$'\b' ;;
      f) out+=$'\f' ;;
      n) out+=$'\n' ;;
      r) out+=$'\r' ;;
      t) out+=$'\t' ;;
      u)
        hex=${s:0:4}
        [[ $hex =~ ^[0-9a-fA-F]{4}$ ]] || return 1
        s=${s:4}
        cp=$((16#$hex))
        if ((cp >= 0xd800 && cp <= 0xdbff)) && [[ ${s:0:6} =~ ^\\u[dD][c-fC-F][0-9a-fA-F]{2}$ ]]; then
          lo=$((16#${s:2:4}))
          s=${s:6}
          cp=$((0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)))
        elif ((cp >= 0xd800 && cp <= 0xdfff)) || ((cp == 0)); then
          cp=0xfffd
        fi
        _bpcs_utf8_encode "$cp"
        out+=$REPLY
        ;;
      *) return 1 ;;
    esac
  done
  REPLY=$out$s
}

# --- JSON builders ---------------------------------------------------------------------------

# Converts one typed value to JSON text in REPLY. Types: str, int, num, bool, json (raw JSON
# text you built with these functions), null (value ignored). Returns 1 on a bad value.
_bpcs_typed_json() {
  local value=${2-} digits=${2:+${2#-}}
  # Each check's status is the function's (1: a bad value).
  case $1 in
    str | string) bpcs_json_string "$value" ;;
    int | integer) [[ -n $digits && $digits != *[!0-9]* && ($digits == 0 || $digits != 0*) ]] && REPLY=$value ;;
    num | number) [[ $value =~ ${_BPCS_RE_NUMBER}$ ]] && REPLY=$value ;;
    bool | boolean) [[ $value == true || $value == false ]] && REPLY=$value ;;
    json | raw) [[ -n $value ]] && REPLY=$value ;;
    null) REPLY=null ;;
    *) return 1 ;;
  esac
}

_bpcs_builder_error() { # @rune-cold: a plugin bug
  bpcs_fail 1 PLUGIN_FAILED "plugin bug: $1"
}

# bpcs_json_object TYPE KEY VALUE [TYPE KEY VALUE]... — a JSON object in REPLY.
#   bpcs_json_object str name "$name" int count 3 bool ok true json items "$array"
bpcs_json_object() {
  local out='' sep='' key
  while (($# > 0)); do
    (($# >= 3)) || _bpcs_builder_error "bpcs_json_object needs TYPE KEY VALUE triples"
    key=$2
    if [[ $1 == str && $3 != *$_BPCS_SPECIAL* ]]; then
      REPLY="\"$3\""
    elif [[ $1 == json && -n $3 ]]; then
      REPLY=$3
    else
      _bpcs_typed_json "$1" "$3" || _bpcs_builder_error "bpcs_json_object: bad $1 value for key '$key'"
    fi
    if [[ $key == *$_BPCS_SPECIAL* ]]; then
      local value=$REPLY
      bpcs_json_escape "$key"
      out+="$sep\"$REPLY\":$value"
    else
      out+="$sep\"$key\":$REPLY"
    fi
    sep=,
    shift 3
  done
  REPLY="{$out}"
}

# bpcs_json_array TYPE [VALUE]... — a JSON array of values of one type in REPLY.
#   bpcs_json_array str "${units[@]}"
bpcs_json_array() {
  local type=$1 out='' sep='' value
  shift
  for value in "$@"; do
    _bpcs_typed_json "$type" "$value" || _bpcs_builder_error "bpcs_json_array: bad $type value"
    out+="$sep$REPLY"
    sep=,
  done
  REPLY="[$out]"
}

# bpcs_out TYPE KEY VALUE — sets output_data.KEY (setting a key again replaces it).
bpcs_out() {
  (($# == 3)) || _bpcs_builder_error "bpcs_out needs TYPE KEY VALUE"
  # Plain strings and JSON text inline (what _bpcs_typed_json does for them, without the call).
  if [[ $1 == str && $3 != *$_BPCS_SPECIAL* ]]; then
    REPLY="\"$3\""
  elif [[ $1 == json && -n $3 ]]; then
    REPLY=$3
  else
    _bpcs_typed_json "$1" "$3" || _bpcs_builder_error "bpcs_out: bad $1 value for key '$2'"
  fi
  # The member text is kept in _BPCS_OUT_M, in the order keys were first set; _BPCS_OUT maps a
  # key to its index there (the result then joins them in one expansion).
  local value=$REPLY i=${_BPCS_OUT[$2]-${#_BPCS_OUT_M[@]}}
  if [[ $2 == *$_BPCS_SPECIAL* ]]; then bpcs_json_escape "$2"; else REPLY=$2; fi
  _BPCS_OUT[$2]=$i
  _BPCS_OUT_M[i]="\"$REPLY\":$value"
}

# bpcs_summary TEXT — the one-line summary of the result.
bpcs_summary() {
  _BPCS_SUMMARY=$1
}

# bpcs_artifact PATH [DESCRIPTION] — declares a file on the node as an artifact (size and sha256
# are computed here). PATH must be absolute and a regular file.
bpcs_artifact() { # @rune-cold: plugins that declare artifacts
  local path=$1 description=${2-} size sum
  [[ $path == /* && -f $path ]] || _bpcs_builder_error "artifact '$path' is not an absolute path to a file"
  size=$(wc -c <"$path")
  size=${size//[!0-9]/}
  sum=$(sha256sum -- "$path")
  sum=${sum%% *}
  [[ $sum =~ ^[0-9a-f]{64}$ ]] || _bpcs_builder_error "could not hash artifact '$path'"
  if [[ -n $description ]]; then
    bpcs_json_object str path "$path" int size "$size" str sha256 "$sum" str description "${description:0:1000}"
  else
    bpcs_json_object str path "$path" int size "$size" str sha256 "$sum"
  fi
  _BPCS_ARTIFACTS+=("$REPLY")
}

# --- the request -----------------------------------------------------------------------------

# Canonical (JSON-escaped) form of one object key in REPLY.
_bpcs_key() { # @rune-cold: keys that need escaping
  if [[ $1 == *[\\\"]* || $1 == *$_BPCS_CTRL* || $1 == *$_BPCS_HIGH* ]]; then
    bpcs_json_escape "$1"
  else
    REPLY=$1
  fi
}

# Path of the given components ("$", then \x1f-separated canonical keys) in REPLY.
_bpcs_path() {
  # Plain components (the common case) are already canonical: joined at once.
  local all="$*" IFS=$_BPCS_SEP
  if [[ $all == *[\\\"]* || $all == *$_BPCS_NOT_PLAIN* ]]; then
    _bpcs_path_escaped "$@"
  elif (($#)); then
    REPLY=\$$_BPCS_SEP$*
  else
    REPLY=\$
  fi
}

# _bpcs_path for components that need escaping.
_bpcs_path_escaped() { # @rune-cold: keys that need escaping
  local path='$' part
  for part in "$@"; do
    _bpcs_key "$part"
    path+=$_BPCS_SEP$REPLY
  done
  REPLY=$path
}

# Records one node of the parsed document. VALUE: decoded string, number text, true/false,
# null, or the length of an object/array.
_bpcs_node() { # @rune-cold: the jq parser
  local path=$1 type=$2 value=$3
  if [[ $path != '$' ]]; then
    local parent=${path%"$_BPCS_SEP"*} key=${path##*"$_BPCS_SEP"} depth=${path//[!$_BPCS_SEP]/}
    if ((${#depth} > BPCS_MAX_DEPTH)); then
      _BPCS_PARSE_ERROR="document nests deeper than $BPCS_MAX_DEPTH levels"
      return 1
    fi
    if [[ ${_BPCS_T[$parent]-} == object ]]; then
      if [[ -n ${_BPCS_T[$path]+x} ]]; then
        _bpcs_drop_subtree "$path"
      else
        _BPCS_K[$parent]+=$key$'\n'
      fi
    fi
  fi
  _BPCS_T[$path]=$type
  _BPCS_V[$path]=$value
}

# A duplicate key: the last one wins (as in jq and JSON.parse); forget the earlier value.
_bpcs_drop_subtree() { # @rune-cold: duplicate keys
  local prefix=$1$_BPCS_SEP p
  for p in "${!_BPCS_T[@]}"; do
    if [[ $p == "$prefix"* ]]; then
      unset '_BPCS_T[$p]' '_BPCS_V[$p]' '_BPCS_K[$p]'
    fi
  done
  unset '_BPCS_K[$1]'
}

# --- parser: jq ------------------------------------------------------------------------------

_bpcs_parse_jq() { # @rune-cold: requests >= 64 KiB
  # shellcheck disable=SC2016 # a jq program, not shell
  local program='
  if length != 1 then error("expected exactly one JSON document") else .[0] end
  | def lenval: if type == "object" or type == "array" then length | tostring else tojson end;
    (["", type, lenval] | join("\u001e")),
    (paths as $p | getpath($p) as $v
      | [($p | map("\u001f" + (if type == "number" then tostring else tojson end)) | join("")),
         ($v | type), ($v | lenval)] | join("\u001e"))'
  local flat line path type value comp rest out errfile=/dev/null message=''
  _bpcs_make_tmpdir && errfile=$BPCS_TMPDIR/jq.err
  if ! flat=$(jq -rs "$program" <<<"$1" 2>"$errfile"); then
    [[ $errfile != /dev/null ]] && message=$(head -c 300 -- "$errfile")
    _BPCS_PARSE_ERROR="request is not valid JSON (jq: ${message:-parse error})"
    return 1
  fi
  while IFS= read -r line; do
    path=${line%%$'\x1e'*}
    rest=${line#*$'\x1e'}
    type=${rest%%$'\x1e'*}
    value=${rest#*$'\x1e'}
    # Components arrive as tojson text ("key" or 3); make them canonical like the Bash parser.
    out='$'
    rest=$path
    while [[ -n $rest ]]; do
      rest=${rest#"$_BPCS_SEP"}
      comp=${rest%%"$_BPCS_SEP"*}
      rest=${rest:${#comp}}
      if [[ $comp == \"* ]]; then
        comp=${comp:1:${#comp}-2}
        if [[ $comp == *\\* ]]; then
          bpcs_json_unescape "$comp" || return 1
          _bpcs_key "$REPLY"
          comp=$REPLY
        fi
      fi
      out+=$_BPCS_SEP$comp
    done
    if [[ $type == string ]]; then
      value=${value:1:${#value}-2}
      bpcs_json_unescape "$value" || return 1
      value=$REPLY
    fi
    _bpcs_node "$out" "$type" "$value" || return 1
  done <<<"$flat"
}

# --- parser: pure Bash -----------------------------------------------------------------------
# One iterative loop with an explicit stack (no function call per token: a Bash function call
# costs more than the C-level pattern matching that does the work). Tokens are taken from the
# front of the remaining text; strings are cut at their first quote or backslash with one
# pattern removal, numbers and literals are matched on a bounded window, and the common case
# (compact JSON, plain keys, strings without escapes) never leaves the loop. The error text of
# _bpcs_perr shows the remaining text, which the loop keeps in _bpcs_rest.

_bpcs_perr() { # @rune-cold: invalid requests
  _BPCS_PARSE_ERROR="request is not valid JSON: $1 near '${_bpcs_rest:0:40}'"
  return 1
}

# The slow path of a string with backslashes, shared by values and keys: reads the caller's `r`
# (the text after the opening quote) and `s` (for the error), sets `body` (still escaped) and `r`
# (the text after the closing quote). Bash's dynamic scope makes those the caller's locals.
_bpcs_scan_escaped() { # @rune-cold: strings with backslashes
  local t
  body=
  while :; do
    t=${r%%[\"\\]*}
    if ((${#t} == ${#r})); then
      _bpcs_rest=$s
      _bpcs_perr 'unterminated string'
      return 1
    fi
    body+=$t
    r=${r:${#t}}
    if [[ $r == \"* ]]; then
      r=${r:1}
      return 0
    fi
    body+=${r:0:2}
    r=${r:2}
  done
}

# A number at the front of the caller's `s` (any JSON number: the regex path); sets the node at
# the caller's `path` and advances `s` (Bash's dynamic scope makes those the caller's locals).
_bpcs_parse_number() { # @rune-cold: negative, fractional and exponent numbers
  t=${s:0:400}
  if [[ $t =~ $_BPCS_RE_NUMBER ]]; then
    number=${BASH_REMATCH[0]}
    _BPCS_T[$path]=number
    _BPCS_V[$path]=$number
    s=${s:${#number}}
  else
    _bpcs_rest=$s
    if [[ -z $s ]]; then
      _bpcs_perr 'unexpected end of the document'
    else
      _bpcs_perr 'unexpected character'
    fi
    return 1
  fi
}

# The slow path of a value string (escapes or control characters): reads the caller's `s` (at
# the opening quote), `r` (after it) and `body` (up to the first quote or backslash); sets `body`
# (decoded) and `s` (after the closing quote).
_bpcs_parse_string_slow() { # @rune-cold: strings with escapes
  if [[ ${r:${#body}:1} == '"' ]]; then
    r=${r:${#body}+1}
  elif ! _bpcs_scan_escaped; then
    return 1
  fi
  if [[ $body == *$_BPCS_CTRL* ]]; then
    _bpcs_rest=$s
    _bpcs_perr 'control character in string'
    return 1
  fi
  if [[ $body == *\\* ]]; then
    if ! bpcs_json_unescape "$body"; then
      _bpcs_rest=$s
      _bpcs_perr 'invalid escape in string'
      return 1
    fi
    body=$REPLY
  fi
  s=$r
}

# The slow path of a member's key (whitespace around it, escapes, high bytes): reads the
# caller's `s`; sets `body` (the canonical key) and `s` (after the colon).
_bpcs_parse_key_slow() { # @rune-cold: keys with escapes, high bytes or whitespace
  if [[ $s == ["$ws"]* ]]; then
    t=${s%%[!"$ws"]*}
    s=${s:${#t}}
  fi
  if [[ $s != '"'* ]]; then
    _bpcs_rest=$s
    _bpcs_perr 'expected a key'
    return 1
  fi
  r=${s:1}
  body=${r%%[\"\\]*}
  if [[ ${r:${#body}:1} == '"' ]]; then
    r=${r:${#body}+1}
  elif ! _bpcs_scan_escaped; then
    return 1
  fi
  if [[ $body == *$_BPCS_CTRL* ]]; then
    _bpcs_rest=$s
    _bpcs_perr 'control character in string'
    return 1
  fi
  # Keys are stored canonical (JSON-escaped); a plain key already is.
  if [[ $body == *\\* || $body == *$_BPCS_HIGH* ]]; then
    if ! bpcs_json_unescape "$body"; then
      _bpcs_rest=$s
      _bpcs_perr 'invalid escape in key'
      return 1
    fi
    _bpcs_key "$REPLY"
    body=$REPLY
  fi
  s=$r
  if [[ $s == ["$ws"]* ]]; then
    t=${s%%[!"$ws"]*}
    s=${s:${#t}}
  fi
  if [[ $s != :* ]]; then
    _bpcs_rest=$s
    _bpcs_perr "expected ':'"
    return 1
  fi
  s=${s:1}
}

# _bpcs_parse_bash TEXT [PATH DEPTH] — parses TEXT into the tables; with PATH and DEPTH, as the
# value at PATH, DEPTH containers deep (the canonical fast path parses only input_parameters).
# Deferred: a canonical request reaches it only for parameters the flat reader refuses.
_bpcs_parse_bash() { # @rune-cold: requests not in the canonical encoding, nested parameters
  local s=$1 ws=$' \t\n\r' state=value path=${2:-\$} body r t keys number
  # The open container (its path, kind o|a and, for an array, the index of the current
  # element) in scalars; the stack keeps those of the containers around it.
  local cur='' kind='' count=0 depth=${3:-0} base=${3:-0}
  local -a stack_path=() stack_kind=() stack_count=()
  if [[ -z ${s//["$ws"]/} ]]; then
    _BPCS_PARSE_ERROR='request is empty'
    return 1
  fi
  while :; do
    case $state in
      value)
        case ${s:0:1} in
          '"')
            r=${s:1}
            body=${r%%[\"\\]*}
            if [[ ${r:${#body}:1} == '"' && $body != *$_BPCS_CTRL* ]]; then
              # Fast path: no escapes, no control characters.
              s=${r:${#body}+1}
            else
              _bpcs_parse_string_slow || return 1
            fi
            _BPCS_T[$path]=string
            _BPCS_V[$path]=$body
            ;;
          '{' | '[')
            if [[ $s == '{'* ]]; then
              _BPCS_T[$path]=object
              t='}'
            else
              _BPCS_T[$path]=array
              t=']'
            fi
            _BPCS_V[$path]=0
            s=${s:1}
            if [[ $s == ["$ws"]* ]]; then
              r=${s%%[!"$ws"]*}
              s=${s:${#r}}
            fi
            if [[ $s == "$t"* ]]; then
              s=${s:1}
            else
              if ((depth >= BPCS_MAX_DEPTH)); then
                _BPCS_PARSE_ERROR="document nests deeper than $BPCS_MAX_DEPTH levels"
                return 1
              fi
              stack_path[depth]=$cur
              stack_kind[depth]=$kind
              stack_count[depth]=$count
              depth=$((depth + 1))
              cur=$path
              if [[ $t == '}' ]]; then
                kind=o
                state=key
              else
                kind=a
                count=0
                path+=${_BPCS_SEP}0
              fi
              continue
            fi
            ;;
          [1-9])
            # Fast path: a plain positive integer (no fraction, no exponent) without the regex.
            number=${s:0:400}
            number=${number%%[!0-9]*}
            case ${s:${#number}:1} in
              . | e | E) _bpcs_parse_number || return 1 ;;
              *)
                _BPCS_T[$path]=number
                _BPCS_V[$path]=$number
                s=${s:${#number}}
                ;;
            esac
            ;;
          0)
            case ${s:1:1} in
              . | e | E) _bpcs_parse_number || return 1 ;;
              *)
                _BPCS_T[$path]=number
                _BPCS_V[$path]=0
                s=${s:1}
                ;;
            esac
            ;;
          t | f | n)
            case $s in
              true*) _BPCS_T[$path]=boolean _BPCS_V[$path]=true s=${s:4} ;;
              false*) _BPCS_T[$path]=boolean _BPCS_V[$path]=false s=${s:5} ;;
              null*) _BPCS_T[$path]=null _BPCS_V[$path]=null s=${s:4} ;;
              *)
                _bpcs_rest=$s
                _bpcs_perr 'unexpected character'
                return 1
                ;;
            esac
            ;;
          ' ' | $'\t' | $'\n' | $'\r')
            t=${s%%[!"$ws"]*}
            s=${s:${#t}}
            continue
            ;;
          *) _bpcs_parse_number || return 1 ;;
        esac
        state=after
        ;;
      key)
        # Inside an object: a member's key and its colon; the value follows. Fast path: compact
        # JSON, a plain key directly followed by its colon (what RUNE sends).
        r=${s#\"}
        body=${r%%[\"\\]*}
        if [[ $s == \"* && ${r:${#body}:2} == '":' && $body != *$_BPCS_NOT_PLAIN* ]]; then
          s=${r:${#body}+2}
        else
          _bpcs_parse_key_slow || return 1
        fi
        path=$cur$_BPCS_SEP$body
        if [[ -n ${_BPCS_T[$path]+x} ]]; then
          # A duplicate key: the last one wins (as in jq and JSON.parse).
          _bpcs_drop_subtree "$path"
        else
          _BPCS_K[$cur]+=$body$'\n'
        fi
        state=value
        ;;
      after)
        # After a value: a comma or the end of the container (or of the document).
        case ${s:0:1} in
          ' ' | $'\t' | $'\n' | $'\r')
            t=${s%%[!"$ws"]*}
            s=${s:${#t}}
            continue
            ;;
        esac
        if ((depth == base)); then
          if [[ -n $s ]]; then
            _bpcs_rest=$s
            _bpcs_perr 'unexpected data after the document'
            return 1
          fi
          return 0
        fi
        case ${s:0:1}$kind in
          ,o)
            s=${s:1}
            state=key
            ;;
          ,a)
            s=${s:1}
            count=$((count + 1))
            path=$cur$_BPCS_SEP$count
            state=value
            ;;
          '}o' | ']a')
            s=${s:1}
            if [[ $kind == o ]]; then
              keys=${_BPCS_K[$cur]-}
              keys=${keys//[!$'\n']/}
              _BPCS_V[$cur]=${#keys}
            else
              _BPCS_V[$cur]=$((count + 1))
            fi
            depth=$((depth - 1))
            cur=${stack_path[depth]}
            kind=${stack_kind[depth]}
            count=${stack_count[depth]}
            ;;
          *o)
            _bpcs_rest=$s
            _bpcs_perr "expected ',' or '}'"
            return 1
            ;;
          *)
            _bpcs_rest=$s
            _bpcs_perr "expected ',' or ']'"
            return 1
            ;;
        esac
        ;;
    esac
  done
}

# --- the canonical request: fast path --------------------------------------------------------
# RUNE sends every request in the canonical encoding of specs/rcs-v1.md ("Canonical encoding"):
# compact JSON, members in a fixed order, input_parameters the only free-form part. This reads
# such a request with a few expansions and runs the general parser on input_parameters only. It
# fills the tables exactly as _bpcs_parse_bash would for the whole document, or returns 1 and
# leaves the request to it (hand-written requests, other senders, anything unusual): it accepts
# an envelope string only without backslashes and control characters (so it holds no escape and
# ends at its first quote), rebuilds the envelope from the strings it cut and compares it with
# the text byte for byte, and takes the options from a tail it also compares whole.
_BPCS_CANON_NOT_PLAIN=$'[\x01-\x1f\\\\]'
_BPCS_CANON_PARAMS=',"data":{"input_parameters":'
_BPCS_CANON_OPTIONS=',"options":{"dry_run":'
# input_parameters' path below the root.
_BPCS_CANON_PARAMS_PATH=payload${_BPCS_SEP}data${_BPCS_SEP}input_parameters

_bpcs_parse_canonical() {
  local s=$1 head prefix rest opts dry tm params noglob=0 IFS=\"
  local -a f
  # The envelope is short (its strings are bounded by the schema): look for its end in a window.
  # (Patterns of the form LITERAL* are tried once per position; *LITERAL ones would be
  # quadratic.)
  head=${s:0:2048}
  prefix=${head%%"$_BPCS_CANON_PARAMS"*}
  ((${#prefix} < ${#head})) || return 1
  prefix+=$_BPCS_CANON_PARAMS
  # shellcheck disable=SC2295 # a bracket pattern, unquoted on purpose
  [[ $prefix != *$_BPCS_CANON_NOT_PLAIN* ]] || return 1
  # Split at the quotes (no string holds one now); no pathname expansion of the pieces.
  [[ $- == *f* ]] && noglob=1
  set -f
  # shellcheck disable=SC2206 # split at IFS (") on purpose, globbing off
  f=($prefix)
  ((noglob)) || set +f
  IFS=$' \t\n'
  ((${#f[@]} == 57)) || return 1
  [[ $prefix == "{\"message_metadata\":{\"message_id\":\"${f[5]}\",\"trace_id\":\"${f[9]}\",\"timestamp\":\"${f[13]}\",\"sender\":{\"component\":\"${f[19]}\",\"version\":\"${f[23]}\",\"host\":\"${f[27]}\"}},\"routing\":{\"action\":\"${f[33]}\",\"node\":\"${f[37]}\",\"transport\":\"${f[41]}\",\"deploy_mode\":\"${f[45]}\"},\"payload\":{\"schema_version\":\"${f[51]}\",\"data\":{\"input_parameters\":" ]] || return 1
  # The tail: the options, the four closing braces, at most one newline; from the last
  # occurrence of its start. What lies between is input_parameters, parsed as one whole value.
  rest=${s:${#prefix}}
  params=${rest%"$_BPCS_CANON_OPTIONS"*}
  ((${#params} < ${#rest})) || return 1
  opts=${rest:${#params}+${#_BPCS_CANON_OPTIONS}}
  opts=${opts%$'\n'}
  dry=${opts%%,*}
  [[ $dry == true || $dry == false ]] || return 1
  tm=${opts#"$dry,\"timeout_ms\":"}
  tm=${tm%\}\}\}\}}
  # Digits only: so the tail was exactly the options and the braces.
  [[ -n $tm && $tm != *[!0-9]* && ($tm == 0 || $tm != 0*) ]] || return 1
  local p=\$$_BPCS_SEP S=$_BPCS_SEP
  local r=${p}routing d=${p}payload${S}data
  # Flat parameters (what most actions take) without the general parser; anything else is not
  # necessarily an object: bpcs_init checks the type, as after the general parser. The tables
  # hold nothing but what the flat reader left when it stepped aside.
  local flat=1
  if [[ $params == '{}' ]]; then
    _BPCS_T[$d${S}input_parameters]=object _BPCS_V[$d${S}input_parameters]=0
  elif ! _bpcs_parse_flat "$params" "$d${S}input_parameters"; then
    flat=0
    _bpcs_parse_params_general || return 1
  fi
  # The envelope's table entries are made when something asks for them (most plugins read
  # the envelope through bpcs_init's variables only).
  _BPCS_E=("${f[5]}" "${f[9]}" "${f[13]}" "${f[19]}" "${f[23]}" "${f[27]}" "${f[33]}" "${f[37]}"
    "${f[41]}" "${f[45]}" "${f[51]}" "$dry" "$tm")
  _BPCS_LAZY=1
  # The JSON text of the parts a plugin may echo (bpcs_json_at), exactly as the serializer
  # writes it: these strings hold no escapes, and flat parameters are compact already. Text
  # with high bytes (the serializer replaces invalid UTF-8) and parameters that are not flat or
  # have an empty key (the serializer leaves those out) are serialized when asked for instead.
  _BPCS_J[$d${S}options]="{\"dry_run\":$dry,\"timeout_ms\":$tm}"
  local routing=${f[33]}${f[37]}${f[41]}${f[45]}
  if [[ $routing != *$_BPCS_HIGH* ]]; then
    _BPCS_J[$r]="{\"action\":\"${f[33]}\",\"node\":\"${f[37]}\",\"transport\":\"${f[41]}\",\"deploy_mode\":\"${f[45]}\"}"
  fi
  if ((flat)) && [[ $params != *$_BPCS_HIGH* && $params != *'{""'* && $params != *',""'* ]]; then
    _BPCS_J[$d${S}input_parameters]=$params
  fi
}

# The parameters the flat reader stepped aside for (the caller's, _bpcs_parse_canonical's,
# params and d), with the general parser, in cleared tables.
_bpcs_parse_params_general() { # @rune-cold: nested or unusual parameters
  _BPCS_T=() _BPCS_V=() _BPCS_K=()
  _bpcs_parse_bash "$params" "$d$_BPCS_SEP"input_parameters 3
}

# _bpcs_parse_flat TEXT PATH — TEXT, a compact object of scalars, into the tables at PATH exactly
# as `_bpcs_parse_bash TEXT PATH DEPTH` fills them, or status 1 (the caller clears the tables and
# runs the general parser). A member is a key that needs no escaping (no backslash, control
# character or high byte) directly followed by its colon, and a string without backslashes or
# control characters, an integer of at most 18 digits without sign or leading zero, true, false
# or null. Anything else steps aside: whitespace, escapes, nested values, negative, fractional
# or exponent numbers, duplicate keys. It lets the general parser be deferred (@rune-cold).
_bpcs_parse_flat() {
  local s=$1 path=$2 keys='' key r value child
  if [[ $s == '{}' ]]; then
    _BPCS_T[$path]=object
    _BPCS_V[$path]=0
    return 0
  fi
  [[ $s == '{'* ]] || return 1
  s=${s:1}
  while :; do
    r=${s:1}
    key=${r%%[\"\\]*}
    [[ $s == \"* && ${r:${#key}:2} == '":' && $key != *$_BPCS_NOT_PLAIN* ]] || return 1
    child=$path$_BPCS_SEP$key
    # A duplicate key: the general parser keeps the last one.
    [[ -z ${_BPCS_T[$child]+x} ]] || return 1
    s=${r:${#key}+2}
    case $s in
      \"*)
        r=${s:1}
        value=${r%%[\"\\]*}
        [[ ${r:${#value}:1} == '"' && $value != *$_BPCS_CTRL* ]] || return 1
        _BPCS_T[$child]=string
        s=${r:${#value}+1}
        ;;
      [1-9]*)
        value=${s%%[!0-9]*}
        ((${#value} <= 18)) || return 1
        _BPCS_T[$child]=number
        s=${s:${#value}}
        ;;
      0*) value=0 _BPCS_T[$child]=number s=${s:1} ;;
      true*) value=true _BPCS_T[$child]=boolean s=${s:4} ;;
      false*) value=false _BPCS_T[$child]=boolean s=${s:5} ;;
      null*) value=null _BPCS_T[$child]=null s=${s:4} ;;
      *) return 1 ;;
    esac
    _BPCS_V[$child]=$value
    keys+=$key$'\n'
    case $s in
      ,*) s=${s:1} ;;
      '}') break ;;
      *) return 1 ;;
    esac
  done
  _BPCS_T[$path]=object
  _BPCS_K[$path]=$keys
  keys=${keys//[!$'\n']/}
  _BPCS_V[$path]=${#keys}
}

# _bpcs_fill_envelope — the table entries of a canonical request's envelope (exactly what the
# general parser makes for it), from _BPCS_E; a no-op once made. Every reader of the tables
# outside input_parameters calls it first.
_bpcs_fill_envelope() { # @rune-cold: plugins that read the envelope from the tables
  [[ -n $_BPCS_LAZY ]] || return 0
  _BPCS_LAZY=
  local p=\$$_BPCS_SEP S=$_BPCS_SEP
  local m=${p}message_metadata r=${p}routing d=${p}payload${S}data
  _BPCS_T+=(
    [\$]=object [$m]=object [$m${S}message_id]=string [$m${S}trace_id]=string
    [$m${S}timestamp]=string [$m${S}sender]=object [$m${S}sender${S}component]=string
    [$m${S}sender${S}version]=string [$m${S}sender${S}host]=string [$r]=object
    [$r${S}action]=string [$r${S}node]=string [$r${S}transport]=string [$r${S}deploy_mode]=string
    [${p}payload]=object [${p}payload${S}schema_version]=string [$d]=object
    [$d${S}options]=object [$d${S}options${S}dry_run]=boolean [$d${S}options${S}timeout_ms]=number
  )
  _BPCS_V+=(
    [\$]=3 [$m]=4 [$m${S}message_id]=${_BPCS_E[0]} [$m${S}trace_id]=${_BPCS_E[1]} [$m${S}timestamp]=${_BPCS_E[2]}
    [$m${S}sender]=3 [$m${S}sender${S}component]=${_BPCS_E[3]} [$m${S}sender${S}version]=${_BPCS_E[4]}
    [$m${S}sender${S}host]=${_BPCS_E[5]} [$r]=4 [$r${S}action]=${_BPCS_E[6]} [$r${S}node]=${_BPCS_E[7]}
    [$r${S}transport]=${_BPCS_E[8]} [$r${S}deploy_mode]=${_BPCS_E[9]} [${p}payload]=2
    [${p}payload${S}schema_version]=${_BPCS_E[10]} [$d]=2 [$d${S}options]=2
    [$d${S}options${S}dry_run]=${_BPCS_E[11]} [$d${S}options${S}timeout_ms]=${_BPCS_E[12]}
  )
  _BPCS_K+=(
    [\$]=$'message_metadata\nrouting\npayload\n' [$m]=$'message_id\ntrace_id\ntimestamp\nsender\n'
    [$m${S}sender]=$'component\nversion\nhost\n' [$r]=$'action\nnode\ntransport\ndeploy_mode\n'
    [${p}payload]=$'schema_version\ndata\n' [$d]=$'input_parameters\noptions\n'
    [$d${S}options]=$'dry_run\ntimeout_ms\n'
  )
}

# --- reading values --------------------------------------------------------------------------

# bpcs_get COMPONENT... — the value at a path (e.g. `bpcs_get routing node`) in REPLY; returns 1
# when absent. Strings come decoded; numbers as written; booleans as true/false; containers as
# their length.
bpcs_get() {
  [[ -z $_BPCS_LAZY || ${1-} == payload && ${2-} == data && ${3-} == input_parameters ]] || _bpcs_fill_envelope
  _bpcs_path "$@"
  if [[ -z ${_BPCS_T[$REPLY]+x} ]]; then
    REPLY=
    return 1
  fi
  REPLY=${_BPCS_V[$REPLY]}
}

# bpcs_type COMPONENT... — object|array|string|number|boolean|null, or "absent", in REPLY.
bpcs_type() {
  [[ -z $_BPCS_LAZY || ${1-} == payload && ${2-} == data && ${3-} == input_parameters ]] || _bpcs_fill_envelope
  _bpcs_path "$@"
  REPLY=${_BPCS_T[$REPLY]-absent}
}

# bpcs_keys COMPONENT... — the keys of the object at a path, decoded, in BPCS_ARRAY.
bpcs_keys() {
  [[ -z $_BPCS_LAZY || ${1-} == payload && ${2-} == data && ${3-} == input_parameters ]] || _bpcs_fill_envelope
  _bpcs_path "$@"
  local keys=${_BPCS_K[$REPLY]-} key
  BPCS_ARRAY=()
  # Canonical keys hold no raw newline; splitting with expansions needs no here-string (a pipe
  # read byte by byte).
  while [[ -n $keys ]]; do
    key=${keys%%$'\n'*}
    keys=${keys#*$'\n'}
    [[ -n $key ]] || continue
    if [[ $key == *\\* ]]; then
      bpcs_json_unescape "$key"
      key=$REPLY
    fi
    BPCS_ARRAY+=("$key")
  done
}

_bpcs_serialize() { # @rune-cold: values bpcs_json_at finds no JSON text of (see _BPCS_J)
  local path=$1 type=${_BPCS_T[$1]} out='' sep='' key keys i=0 n child
  if [[ $type != object && $type != array ]]; then
    REPLY=${_BPCS_V[$path]}
    [[ $type == string ]] || return 0
    if [[ $REPLY == *$_BPCS_SPECIAL* ]]; then bpcs_json_string "$REPLY"; else REPLY="\"$REPLY\""; fi
    return 0
  fi
  keys=${_BPCS_K[$path]-}
  n=${_BPCS_V[$path]}
  # Members (by key) or elements (by index): scalars inline, containers recursively (a Bash
  # function call costs more than the work for a scalar).
  while :; do
    if [[ $type == object ]]; then
      [[ -n $keys ]] || break
      key=${keys%%$'\n'*}
      keys=${keys#*$'\n'}
      [[ -n $key ]] || continue
      child=$path$_BPCS_SEP$key
      out+="$sep\"$key\":"
    else
      ((i < n)) || break
      child=$path$_BPCS_SEP$i
      i=$((i + 1))
      out+=$sep
    fi
    sep=,
    case ${_BPCS_T[$child]} in
      string)
        REPLY=${_BPCS_V[$child]}
        if [[ $REPLY == *$_BPCS_SPECIAL* ]]; then bpcs_json_string "$REPLY"; else REPLY="\"$REPLY\""; fi
        ;;
      object | array) _bpcs_serialize "$child" ;;
      *) REPLY=${_BPCS_V[$child]} ;;
    esac
    out+=$REPLY
  done
  if [[ $type == object ]]; then REPLY="{$out}"; else REPLY="[$out]"; fi
}

# bpcs_json_at COMPONENT... — the JSON text of the value at a path in REPLY (returns 1 if absent).
bpcs_json_at() {
  _bpcs_path "$@"
  if [[ -n ${_BPCS_J[$REPLY]+x} ]]; then
    REPLY=${_BPCS_J[$REPLY]}
    return 0
  fi
  if [[ -n $_BPCS_LAZY && ! (${1-} == payload && ${2-} == data && ${3-} == input_parameters) ]]; then
    local path=$REPLY
    _bpcs_fill_envelope
    REPLY=$path
  fi
  if [[ -z ${_BPCS_T[$REPLY]+x} ]]; then
    REPLY=
    return 1
  fi
  _bpcs_serialize "$REPLY"
}

# bpcs_dry_run — succeeds when the request asks for a dry run.
bpcs_dry_run() {
  [[ $BPCS_DRY_RUN == true ]]
}

# --- parameters ------------------------------------------------------------------------------

# The path of input_parameters.NAME in _bpcs_ppath and its type (or "absent") in REPLY: what
# bpcs_type gives, a plain name joined without the general path builder.
_bpcs_param_lookup() {
  if [[ $1 == *[\\\"]* || $1 == *$_BPCS_NOT_PLAIN* ]]; then
    _bpcs_path payload data input_parameters "$1"
    _bpcs_ppath=$REPLY
  else
    _bpcs_ppath=\$${_BPCS_SEP}payload${_BPCS_SEP}data${_BPCS_SEP}input_parameters$_BPCS_SEP$1
  fi
  REPLY=${_BPCS_T[$_bpcs_ppath]-absent}
}

_bpcs_param_error() { # @rune-cold: invalid parameters (name expected got)
  local details
  bpcs_json_object str parameter "$1" str expected "$2" str got "$3"
  details=$REPLY
  bpcs_fail 2 INVALID_PARAMETERS "parameter '$1' must be $2" "$details"
}

# bpcs_has_param NAME — succeeds when input_parameters.NAME is present (and not null).
bpcs_has_param() {
  _bpcs_param_lookup "$1"
  [[ $REPLY != absent && $REPLY != null ]]
}

# bpcs_params_allow NAME... — fails with exit 2 when input_parameters has any other key.
bpcs_params_allow() {
  # No parameters at all (bpcs_init made sure they are an object): nothing to check.
  [[ ${_BPCS_V[\$${_BPCS_SEP}payload${_BPCS_SEP}data${_BPCS_SEP}input_parameters]-} != 0 ]] || return 0
  local key allowed unknown=()
  bpcs_keys payload data input_parameters
  for key in ${BPCS_ARRAY[@]+"${BPCS_ARRAY[@]}"}; do
    for allowed in "$@"; do
      [[ $key == "$allowed" ]] && continue 2
    done
    unknown+=("$key")
  done
  ((${#unknown[@]} == 0)) || _bpcs_params_unknown "${unknown[@]}"
}

# Fails naming the unknown parameters (the arguments).
_bpcs_params_unknown() { # @rune-cold: invalid parameters
  bpcs_json_array str "$@"
  local details="{\"unknown\":$REPLY}" unknown=("$@")
  bpcs_fail 2 INVALID_PARAMETERS "unknown parameter(s): ${unknown[*]:0:5}" "$details"
}

# bpcs_param_string NAME [DEFAULT] [ERE] — a string parameter in REPLY. Absent → DEFAULT (or "").
# With ERE, the value must match it (bash =~ syntax) or the plugin fails with exit 2.
bpcs_param_string() {
  local name=$1 default=${2-} pattern=${3-}
  _bpcs_param_lookup "$name"
  case $REPLY in
    absent | null) REPLY=$default ;;
    string)
      REPLY=${_BPCS_V[$_bpcs_ppath]}
      if [[ -n $pattern ]] && ! [[ $REPLY =~ $pattern ]]; then
        _bpcs_param_error "$name" "a string matching $pattern" 'a non-matching string'
      fi
      ;;
    *) _bpcs_param_error "$name" 'a string' "$REPLY" ;;
  esac
}

# bpcs_param_int NAME DEFAULT [MIN] [MAX] — an integer parameter in REPLY, bounds checked.
bpcs_param_int() {
  local name=$1 default=$2 min=${3-} max=${4-} value
  _bpcs_param_lookup "$name"
  case $REPLY in
    absent | null) REPLY=$default ;;
    number)
      REPLY=${_BPCS_V[$_bpcs_ppath]}
      # Plain digits (what is usually sent) with globs; only other numbers pay for the regex.
      [[ $REPLY != *[!0-9]* && ${#REPLY} -le 15 && ($REPLY == 0 || $REPLY != 0*) ]] ||
        [[ $REPLY =~ $_BPCS_RE_INT ]] || _bpcs_param_error "$name" 'an integer' 'a non-integer number'
      REPLY=${REPLY%%.*}
      ;;
    *) _bpcs_param_error "$name" 'an integer' "$REPLY" ;;
  esac
  value=$REPLY
  [[ ${value#-} == [0-9]* && ${value#-} != *[!0-9]* ]] || _bpcs_param_error "$name" 'an integer' 'something else'
  if { [[ -n $min ]] && ((value < min)); } || { [[ -n $max ]] && ((value > max)); }; then
    _bpcs_param_range_error "$name" 'an integer' "$min" "$max" "$value"
  fi
  REPLY=$value
}

# _bpcs_plain_decimal NUMBER — REPLY = NUMBER without exponent notation (1.5e2 -> 150.0), in
# Bash (no awk on the node needed); exponents are clamped to ±400, far beyond any bound.
_bpcs_plain_decimal() {
  local n=$1 sign='' mantissa exp int frac digits point
  if [[ $n != *[eE]* ]]; then REPLY=$n; return; fi
  [[ $n == -* ]] && sign=- n=${n#-}
  mantissa=${n%%[eE]*} exp=${n#*[eE]}
  exp=${exp#+}
  [[ $exp =~ ^-?0*([0-9]{1,6})$ ]] || exp=0
  if [[ $exp == -* ]]; then exp=$((-10#${BASH_REMATCH[1]})); else exp=$((10#${BASH_REMATCH[1]})); fi
  ((exp > 400)) && exp=400
  ((exp < -400)) && exp=-400
  int=${mantissa%%.*} frac=''
  [[ $mantissa == *.* ]] && frac=${mantissa#*.}
  digits=$int$frac point=$((${#int} + exp))
  while ((point > ${#digits})); do digits+=0; done
  while ((point < 1)); do digits=0$digits point=$((point + 1)); done
  REPLY=$sign${digits:0:point}.${digits:point}
}

# _bpcs_number_below A B — status 0 when the JSON number A < B, compared as decimal strings in
# Bash (no process, no floating-point rounding).
_bpcs_number_below() {
  local a b sa=1 sb=1 ia fa ib fb width
  _bpcs_plain_decimal "$1"
  a=$REPLY
  _bpcs_plain_decimal "$2"
  b=$REPLY
  [[ $a == -* ]] && sa=-1 a=${a#-}
  [[ $b == -* ]] && sb=-1 b=${b#-}
  ia=${a%%.*} ib=${b%%.*} fa='' fb=''
  [[ $a == *.* ]] && fa=${a#*.}
  [[ $b == *.* ]] && fb=${b#*.}
  ia=${ia#"${ia%%[!0]*}"} ib=${ib#"${ib%%[!0]*}"}
  fa=${fa%"${fa##*[!0]}"} fb=${fb%"${fb##*[!0]}"}
  # -0 and 0 are equal: a zero has no sign.
  [[ -z $ia && -z $fa ]] && sa=1
  [[ -z $ib && -z $fb ]] && sb=1
  if ((sa != sb)); then ((sa < sb)); return; fi
  width=$((${#fa} > ${#fb} ? ${#fa} : ${#fb}))
  while ((${#fa} < width)); do fa+=0; done
  while ((${#fb} < width)); do fb+=0; done
  # Compare magnitudes as strings of equal length: integer digits first, then the fraction.
  local ma mb
  if ((${#ia} != ${#ib})); then
    ((${#ia} < ${#ib})) && ma=0 mb=1 || ma=1 mb=0
  elif [[ $ia != "$ib" ]]; then
    [[ $ia < $ib ]] && ma=0 mb=1 || ma=1 mb=0
  elif [[ $fa != "$fb" ]]; then
    [[ $fa < $fb ]] && ma=0 mb=1 || ma=1 mb=0
  else
    return 1
  fi
  if ((sa > 0)); then ((ma < mb)); else ((ma > mb)); fi
}

# _bpcs_param_range_error NAME KIND MIN MAX VALUE — fails naming the range the manifest allows:
# "KIND in the range MIN..MAX", "KIND >= MIN" or "KIND <= MAX" (no command substitution: the
# failure path starts no process either).
_bpcs_param_range_error() { # @rune-cold: error messages
  local range
  if [[ -n $3 && -n $4 ]]; then
    range="in the range $3..$4"
  elif [[ -n $3 ]]; then
    range=">= $3"
  else
    range="<= $4"
  fi
  _bpcs_param_error "$1" "$2 $range" "$5"
}

# bpcs_param_number NAME DEFAULT [MIN] [MAX] — a number parameter (as written) in REPLY, bounds
# checked (inclusive, as the manifest's minimum/maximum).
bpcs_param_number() {
  local name=$1 default=$2 min=${3-} max=${4-} value
  _bpcs_param_lookup "$name"
  case $REPLY in
    absent | null) REPLY=$default ;;
    number) REPLY=${_BPCS_V[$_bpcs_ppath]} ;;
    *) _bpcs_param_error "$name" 'a number' "$REPLY" ;;
  esac
  value=$REPLY
  if { [[ -n $min ]] && _bpcs_number_below "$value" "$min"; } ||
    { [[ -n $max ]] && _bpcs_number_below "$max" "$value"; }; then
    _bpcs_param_range_error "$name" 'a number' "$min" "$max" "$value"
  fi
  REPLY=$value
}

# bpcs_param_bool NAME DEFAULT — true or false in REPLY.
bpcs_param_bool() {
  local name=$1 default=$2
  _bpcs_param_lookup "$name"
  case $REPLY in
    absent | null) REPLY=$default ;;
    boolean) REPLY=${_BPCS_V[$_bpcs_ppath]} ;;
    *) _bpcs_param_error "$name" 'a boolean' "$REPLY" ;;
  esac
}

# bpcs_param_array NAME ITEM_TYPE [DEFAULT]... — an array of scalars in BPCS_ARRAY; absent →
# the DEFAULT values. ITEM_TYPE: string, integer, number, boolean.
bpcs_param_array() {
  local name=$1 item=$2 i n type
  shift 2
  _bpcs_param_lookup "$name"
  case $REPLY in
    absent | null)
      BPCS_ARRAY=("$@")
      return 0
      ;;
    array) ;;
    *) _bpcs_param_error "$name" "an array of ${item}s" "$REPLY" ;;
  esac
  n=${_BPCS_V[$_bpcs_ppath]}
  BPCS_ARRAY=()
  for ((i = 0; i < n; i++)); do
    bpcs_type payload data input_parameters "$name" "$i"
    type=$REPLY
    case $item in
      integer)
        bpcs_get payload data input_parameters "$name" "$i"
        [[ $type == number && $REPLY =~ $_BPCS_RE_INT ]] || _bpcs_param_error "$name" 'an array of integers' "an array containing $type"
        REPLY=${REPLY%%.*}
        ;;
      string | number | boolean)
        [[ $type == "$item" ]] || _bpcs_param_error "$name" "an array of ${item}s" "an array containing $type"
        bpcs_get payload data input_parameters "$name" "$i"
        ;;
      *) _bpcs_builder_error "bpcs_param_array: unknown item type '$item'" ;;
    esac
    BPCS_ARRAY+=("$REPLY")
  done
}

# --- preconditions ---------------------------------------------------------------------------

# bpcs_require_cmd COMMAND... — fails with exit 3 (PLUGIN_PRECONDITION_FAILED) naming every
# command not found on PATH.
bpcs_require_cmd() {
  local cmd missing=()
  for cmd in "$@"; do
    command -v -- "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if ((${#missing[@]} > 0)); then
    bpcs_json_array str "${missing[@]}"
    bpcs_fail 3 PLUGIN_PRECONDITION_FAILED \
      "required command(s) not found on the node: ${missing[*]}" "{\"missing_commands\":$REPLY}"
  fi
}

# bpcs_require_root — fails with exit 4 (PLUGIN_PERMISSION_DENIED) unless running as root.
bpcs_require_root() {
  if ((EUID != 0)); then
    bpcs_fail 4 PLUGIN_PERMISSION_DENIED "this action must run as root (running as uid $EUID)" \
      "{\"uid\":$EUID}"
  fi
}

# --- results ---------------------------------------------------------------------------------

# --- begin generated: error categories (from packages/protocol/src/eps/v1/catalog.ts; run `node plugins/bpcs-categories.mjs`) ---
# _bpcs_category CODE — sets REPLY to the EPS category of CODE. A code outside the catalog (a
# plugin's own) is the plugin's failure: category plugin.
_bpcs_category() { # @rune-cold: failures
  local rest table='
INVALID_ARGUMENT=validation
INVALID_ACTION_NAME=validation
UNKNOWN_ACTION=validation
INVALID_PARAMETERS=validation
INVALID_TARGET=validation
UNKNOWN_NODE=validation
NO_TARGETS=validation
INVALID_CONFIG=validation
INVALID_INVENTORY=validation
INVALID_MANIFEST=validation
PLUGIN_INCLUDE_FAILED=validation
PLUGIN_DIR_UNREADABLE=validation
PAYLOAD_TOO_LARGE=validation
NOT_FOUND=validation
UNSUPPORTED_MEDIA_TYPE=validation
REQUEST_TOO_LARGE=validation
IDEMPOTENCY_KEY_REUSED=validation
UNSUPPORTED_FEATURE=validation
INVALID_ALERT_RULES=validation
ALERT_RECEIVER_UNKNOWN=validation
ALERT_NOT_HELD=validation
WORKFLOW_INVALID=validation
WORKFLOW_EXPRESSION_ERROR=validation
MALFORMED_JSON=protocol
INVALID_ENCODING=protocol
DOCUMENT_TOO_LARGE=protocol
DOCUMENT_TOO_DEEP=protocol
SCHEMA_VIOLATION=protocol
UNSUPPORTED_SCHEMA_VERSION=protocol
OUTPUT_EMPTY=protocol
OUTPUT_NOT_JSON=protocol
OUTPUT_TEXT_BEFORE_JSON=protocol
OUTPUT_MULTIPLE_DOCUMENTS=protocol
OUTPUT_TOO_LARGE=protocol
EXIT_CODE_MISMATCH=protocol
PLUGIN_FAILED=plugin
PLUGIN_INVALID_INPUT=plugin
PLUGIN_PRECONDITION_FAILED=plugin
PLUGIN_PERMISSION_DENIED=plugin
PLUGIN_OPERATION_TIMEOUT=plugin
PLUGIN_CRASHED=plugin
PLUGIN_NOT_EXECUTABLE=plugin
PLUGIN_NOT_INSTALLED=plugin
PLUGIN_INTEGRITY_FAILED=plugin
PLUGIN_CACHE_UNSAFE=policy
HOST_KEY_UNKNOWN=policy
HOST_KEY_MISMATCH=policy
HOST_KEY_REVOKED=policy
PRIVILEGE_PASSWORD_REQUIRED=policy
PRIVILEGE_DENIED=policy
CANARY_FAILED=policy
MAX_FAILURES_EXCEEDED=policy
DANGEROUS_ACTION_REFUSED=policy
SENSITIVE_PARAMETER_REFUSED=policy
AUTH_TOKEN_MISSING=policy
AUTH_TOKEN_INVALID=policy
AUTH_TOKEN_EXPIRED=policy
AUTH_TOKEN_REVOKED=policy
AUTH_TOKEN_IN_URL=policy
ROLE_FORBIDDEN=policy
NODE_BUSY=policy
RATE_LIMITED=policy
QUEUE_FULL=policy
SERVER_SHUTTING_DOWN=policy
WEBHOOK_AUTH_FAILED=policy
WEBHOOK_SIGNATURE_INVALID=policy
WEBHOOK_REPLAYED=policy
POLICY_DENIED=policy
INVALID_POLICY=validation
APPROVAL_SELF_FORBIDDEN=policy
APPROVAL_NOT_PENDING=policy
APPROVAL_MISMATCH=policy
APPROVAL_EXPIRED=policy
APPROVAL_REJECTED=policy
TOKEN_RIGHTS_EXCEEDED=policy
OIDC_LOGIN_FAILED=policy
AUTH_SESSION_INVALID=policy
AUTH_SESSION_EXPIRED=policy
CSRF_REJECTED=policy
APPROVAL_UNAVAILABLE=policy
WORKFLOW_RUN_LIMIT=policy
DNS_LOOKUP_FAILED=transport
CONNECTION_REFUSED=transport
CONNECT_TIMEOUT=transport
HOST_UNREACHABLE=transport
HANDSHAKE_TIMEOUT=transport
AUTH_FAILED=transport
CONNECTION_LOST=transport
CHANNEL_OPEN_FAILED=transport
PROXY_JUMP_FAILED=transport
ARTIFACT_FETCH_FAILED=transport
ARTIFACT_REMOVE_FAILED=transport
INSTANCE_UNKNOWN=transport
INSTANCE_OFFLINE=transport
DELIVERY_TIMEOUT=transport
UNDELIVERABLE=transport
THROTTLED=transport
TRANSPORT_API_ERROR=transport
TRANSPORT_UNAVAILABLE=transport
SHIPPING_SINK_FAILED=transport
PLUGIN_TIMEOUT=timeout
DEADLINE_EXCEEDED=timeout
RUN_CANCELLED=cancelled
RUN_INTERRUPTED=cancelled
INTERNAL_ERROR=internal
AUDIT_WRITE_FAILED=internal
AUDIT_CHAIN_BROKEN=internal
WORKFLOW_INTERRUPTED=internal
STORE_UNAVAILABLE=internal
'
  # The line that starts with CODE= (the code quoted: matched as text, never as a pattern).
  rest=${table#*$'\n'"$1"=}
  if [[ $rest == "$table" ]]; then REPLY=plugin; else REPLY=${rest%%$'\n'*}; fi
}
# --- end generated: error categories ---

_bpcs_output_data() {
  local IFS=, out
  out=${_BPCS_OUT_M[*]+"${_BPCS_OUT_M[*]}"}
  if ((${#_BPCS_WARNINGS[@]} > 0)) && [[ -z ${_BPCS_OUT[warnings]+x} ]]; then
    bpcs_json_array str "${_BPCS_WARNINGS[@]}"
    out+="${out:+,}\"warnings\":$REPLY"
  fi
  REPLY="{$out}"
}

# Renders the result document into REPLY. Args: RESULT [ERROR_JSON].
_bpcs_render() {
  ((_BPCS_SALVAGE == 0)) || _bpcs_salvage_ids "$BPCS_INPUT"
  local meta v=$BPCS_PLUGIN_VERSION summary='' artifacts=''
  _bpcs_timestamp
  meta="{\"trace_id\":\"${BPCS_TRACE_ID:-$_BPCS_UNTRACED}\",\"timestamp\":\"$REPLY\""
  _bpcs_is_uuid "$BPCS_MESSAGE_ID" && meta+=",\"in_reply_to\":\"$BPCS_MESSAGE_ID\""
  # A version of digits and dots is checked with globs (three numbers without leading zeros);
  # only others pay for the regex.
  if _bpcs_is_action "$BPCS_PLUGIN_NAME" && {
    [[ ${v//[0-9]/} == .. && $v != .* && $v != *. && $v != *..* && $v != 0[0-9]* && $v != *.0[0-9]* ]] ||
      [[ $v =~ $_BPCS_RE_SEMVER ]]
  }; then
    meta+=",\"plugin\":{\"name\":\"$BPCS_PLUGIN_NAME\",\"version\":\"$v\"}"
  fi
  if [[ -n $_BPCS_SUMMARY ]]; then
    summary=${_BPCS_SUMMARY//[$'\n\r']/ }
    bpcs_json_string "${summary:0:1000}"
    summary=",\"summary\":$REPLY"
  fi
  if ((${#_BPCS_ARTIFACTS[@]} > 0)); then
    printf -v artifacts '%s,' "${_BPCS_ARTIFACTS[@]:0:64}"
    artifacts=",\"artifacts\":[${artifacts%,}]"
  fi
  _bpcs_output_data
  REPLY="{\"message_metadata\":$meta},\"payload\":{\"schema_version\":\"bpcs_v1\",\"result\":\"$1\"$summary,\"output_data\":$REPLY$artifacts},\"error\":${2:-null}}"
}

# Writes the one result and exits. Args: RESULT EXIT_CODE [ERROR_JSON].
_bpcs_emit() {
  local code=$2 doc
  _bpcs_render "$1" "${3:-null}"
  doc=$REPLY
  # Never hand the control node a document it would have to truncate.
  ((${#doc} <= BPCS_MAX_OUTPUT_BYTES)) || _bpcs_emit_too_large
  [[ $BASHPID == "$_BPCS_MAIN_PID" ]] || _bpcs_emit_subshell
  _BPCS_EMITTED=1
  printf '%s\n' "$doc" >&3
  exit "$code"
}

# Called inside a subshell: hands the result (the caller's, _bpcs_emit's, code and doc) to the
# main shell, which prints it on exit.
_bpcs_emit_subshell() { # @rune-cold: results emitted inside a subshell
  if [[ -n $BPCS_TMPDIR ]] && _bpcs_make_tmpdir; then
    printf '%s\n%s' "$code" "$doc" >"$BPCS_TMPDIR/.pending-result"
    exit "$code"
  fi
}

# The failure document that replaces a result over BPCS_MAX_OUTPUT_BYTES: sets the caller's
# (_bpcs_emit's) doc and code, which Bash's dynamic scope makes visible here.
_bpcs_emit_too_large() { # @rune-cold: results over the size limit
  local size=${#doc}
  _BPCS_OUT=()
  _BPCS_OUT_M=()
  _BPCS_ARTIFACTS=()
  _BPCS_WARNINGS=()
  _BPCS_SUMMARY="plugin result too large ($size bytes); output dropped"
  _bpcs_error_json PLUGIN_FAILED "plugin result exceeded $BPCS_MAX_OUTPUT_BYTES bytes ($size); output dropped" \
    "{\"result_bytes\":$size,\"max_bytes\":$BPCS_MAX_OUTPUT_BYTES}"
  _bpcs_render failure "$REPLY"
  doc=$REPLY
  code=1
}

_bpcs_error_json() { # @rune-cold: failures (code message [details])
  ((_BPCS_SALVAGE == 0)) || _bpcs_salvage_ids "$BPCS_INPUT"
  local code=$1 message=${2:-unknown error} details=${3-} retryable=false
  [[ $code =~ $_BPCS_RE_CODE ]] || code=PLUGIN_FAILED
  _bpcs_category "$code"
  local category=$REPLY
  [[ $code == PLUGIN_OPERATION_TIMEOUT ]] && retryable=true
  local trace=${BPCS_TRACE_ID:-$_BPCS_UNTRACED} source
  source="{\"component\":\"plugin:${BPCS_PLUGIN_NAME:-unknown}\""
  if [[ -n $BPCS_NODE ]]; then
    bpcs_json_string "${BPCS_NODE:0:255}"
    source+=",\"node\":$REPLY"
  fi
  [[ $BPCS_ACTION =~ $_BPCS_RE_ACTION ]] && source+=",\"action\":\"$BPCS_ACTION\""
  source+='}'
  bpcs_json_string "${message:0:4000}"
  local message_json=$REPLY
  _bpcs_timestamp
  local json="{\"code\":\"$code\",\"category\":\"$category\",\"message\":$message_json,\"retryable\":$retryable,\"source\":$source,\"trace_id\":\"$trace\",\"timestamp\":\"$REPLY\""
  if [[ -n $details ]]; then
    if [[ $details != '{'*'}' ]]; then
      bpcs_json_string "$details"
      details="{\"detail\":$REPLY}"
    fi
    json+=",\"details\":$details"
  fi
  REPLY="$json}"
}

# bpcs_success [SUMMARY] — prints the success result and exits 0.
bpcs_success() {
  [[ -n ${1-} ]] && _BPCS_SUMMARY=$1
  _bpcs_emit success 0
}

# bpcs_partial [SUMMARY] — done with warnings: prints a partial result and exits 0.
bpcs_partial() {
  [[ -n ${1-} ]] && _BPCS_SUMMARY=$1
  _bpcs_emit partial 0
}

# bpcs_fail EXIT_CODE EPS_CODE MESSAGE [DETAILS_JSON] — prints a failure result (with the
# output_data gathered so far) and exits with EXIT_CODE (1 failure, 2 invalid input,
# 3 precondition, 4 permission, 5 operation timeout).
bpcs_fail() { # @rune-cold: failures
  local code=${1:-1} eps=${2:-PLUGIN_FAILED} message=${3:-plugin failed} details=${4-}
  [[ $code =~ ^[1-5]$ ]] || code=1
  [[ -z $_BPCS_SUMMARY ]] && _BPCS_SUMMARY=$message
  _bpcs_error_json "$eps" "$message" "$details"
  _bpcs_emit failure "$code" "$REPLY"
}

# --- traps -----------------------------------------------------------------------------------

_bpcs_on_err() {
  _BPCS_ERR_STATUS=$1
  _BPCS_ERR_LINE=$2
  _BPCS_ERR_CMD=$3
}

_bpcs_on_exit() {
  local status=$?
  trap - EXIT ERR
  ((_BPCS_EMITTED)) || [[ $BASHPID != "$_BPCS_MAIN_PID" ]] || _bpcs_exit_unemitted
  [[ -n $BPCS_TMPDIR && -d $BPCS_TMPDIR ]] && rm -rf -- "$BPCS_TMPDIR"
  exit "$status"
}

# The main shell exits without having printed a result: prints the one a subshell left, or a
# failure document, and sets the caller's (_bpcs_on_exit's) status.
_bpcs_exit_unemitted() { # @rune-cold: a plugin that exits without a result
  if [[ -n $BPCS_TMPDIR && -f $BPCS_TMPDIR/.pending-result ]]; then
    _bpcs_emit_pending
  else
    _bpcs_exit_unexpected "$status"
    status=1
  fi
}

# Prints the result a subshell left (see _bpcs_emit) and sets the caller's (_bpcs_on_exit's)
# status to its exit code.
_bpcs_emit_pending() { # @rune-cold: results emitted inside a subshell
  local pending
  pending=$(<"$BPCS_TMPDIR/.pending-result")
  _BPCS_EMITTED=1
  printf '%s\n' "${pending#*$'\n'}" >&3
  status=${pending%%$'\n'*}
}

# The failure document of a plugin that exited without a result (status $1).
_bpcs_exit_unexpected() { # @rune-cold: a plugin that exits without a result
  local status=$1 message="plugin exited unexpectedly (status $1)" details
  if [[ -n $_BPCS_ERR_CMD ]]; then
    message+=" after a failing command at line $_BPCS_ERR_LINE"
  fi
  bpcs_json_object int exit_status "$status" str failed_command "${_BPCS_ERR_CMD:0:500}" \
    str line "${_BPCS_ERR_LINE:-}"
  details=$REPLY
  [[ -z $_BPCS_SUMMARY ]] && _BPCS_SUMMARY=$message
  _bpcs_error_json PLUGIN_FAILED "$message" "$details"
  _bpcs_render failure "$REPLY"
  _BPCS_EMITTED=1
  printf '%s\n' "$REPLY" >&3
}

_bpcs_on_signal() { # @rune-cold: signals
  trap - TERM INT HUP
  _BPCS_SUMMARY=
  bpcs_fail 1 PLUGIN_FAILED "plugin terminated by signal $1"
}

set -o errtrace
trap '_bpcs_on_err "$?" "$LINENO" "$BASH_COMMAND"' ERR
trap _bpcs_on_exit EXIT
trap '_bpcs_on_signal SIGTERM' TERM
trap '_bpcs_on_signal SIGINT' INT
trap '_bpcs_on_signal SIGHUP' HUP

# --- init ------------------------------------------------------------------------------------

# Best effort: echo the caller's trace and message ids even when the request is unusable. Runs
# only when a result is rendered before bpcs_init has read the ids (_BPCS_SALVAGE=1): a run that
# gets that far never pays for its regexes.
_bpcs_salvage_ids() { # @rune-cold: requests that fail before their ids are read
  _BPCS_SALVAGE=0
  local re_t='"trace_id"[[:space:]]*:[[:space:]]*"([0-9a-f]{32})"'
  local re_m='"message_id"[[:space:]]*:[[:space:]]*"([0-9a-f-]{36})"'
  local head=${1:0:4096}
  [[ $head =~ $re_t ]] && BPCS_TRACE_ID=${BASH_REMATCH[1]}
  if [[ $head =~ $re_m ]]; then
    local id=${BASH_REMATCH[1]}
    [[ $id =~ $_BPCS_RE_UUID ]] && BPCS_MESSAGE_ID=$id
  fi
  [[ $BPCS_TRACE_ID == 00000000000000000000000000000000 ]] && BPCS_TRACE_ID=
  return 0
}

_bpcs_schema_error() { # @rune-cold: invalid requests
  bpcs_fail 2 SCHEMA_VIOLATION "RCS request: $1" "{\"pointer\":\"$2\"}"
}

# A plugin killed with SIGKILL (RUNE's last resort after a timeout; SSM's only way) runs no
# trap, so its scratch directory would stay behind. Each run therefore removes the scratch
# directories of earlier runs whose process is gone: the directory name carries the owner's
# pid, only directories this user owns are touched, and a live pid (or one reused by another
# live process) keeps its directory.

# bpcs_tmpdir — creates the run's private temp dir (mode 0700) on first call and puts its path in
# REPLY (also BPCS_TMPDIR); removed on exit. Fails (exit 1) when it cannot be created safely.
bpcs_tmpdir() {
  _bpcs_make_tmpdir ||
    bpcs_fail 1 PLUGIN_FAILED "cannot create a private temporary directory under ${TMPDIR:-/tmp}"
  REPLY=$BPCS_TMPDIR
}

# Status 0 once BPCS_TMPDIR exists as a directory of this user (not a symlink); a subshell may
# have created it already (same name), so an existing one of ours is accepted.
_bpcs_make_tmpdir() {
  ((_BPCS_TMPDIR_READY == 1)) && return 0
  [[ -n $BPCS_TMPDIR ]] || return 1
  if [[ ! -d $BPCS_TMPDIR ]]; then
    (umask 077 && mkdir -- "$BPCS_TMPDIR") 2>/dev/null || return 1
  fi
  [[ -d $BPCS_TMPDIR && ! -L $BPCS_TMPDIR && -O $BPCS_TMPDIR ]] || return 1
  _BPCS_TMPDIR_READY=1
}

_bpcs_sweep_stale_tmpdirs() {
  local dir pid
  for dir in "${TMPDIR:-/tmp}"/rune-plugin.*.*; do
    [[ -d $dir && ! -L $dir && -O $dir ]] || continue
    pid=${dir##*/rune-plugin.}
    pid=${pid%%.*}
    [[ $pid =~ ^[0-9]+$ ]] || continue
    [[ -d /proc/$pid ]] && continue
    kill -0 "$pid" 2>/dev/null && continue
    rm -rf -- "$dir"
  done
}

# bpcs_init NAME VERSION — reads and validates the RCS request from stdin. Call it once, first.
# Sets BPCS_TRACE_ID, BPCS_MESSAGE_ID, BPCS_ACTION, BPCS_NODE, BPCS_TRANSPORT, BPCS_DEPLOY_MODE,
# BPCS_DRY_RUN (true|false), BPCS_TIMEOUT_MS, BPCS_JSON_PARSER (jq|bash), BPCS_TMPDIR.
bpcs_init() {
  BPCS_PLUGIN_NAME=$1
  BPCS_PLUGIN_VERSION=$2
  _bpcs_sweep_stale_tmpdirs
  # The private temp dir is created on first use (bpcs_tmpdir): most runs never need one, and
  # mktemp would be a process per run. Its name ($TMPDIR/rune-plugin.<pid>.<64 random bits>) is
  # fixed now, so a subshell creates the same one.
  if [[ -n ${SRANDOM:-} ]]; then
    printf -v BPCS_TMPDIR '%s/rune-plugin.%s.%08x%08x' "${TMPDIR:-/tmp}" "$$" "$SRANDOM" "$SRANDOM"
  else
    printf -v BPCS_TMPDIR '%s/rune-plugin.%s.%04x%04x%04x%04x' "${TMPDIR:-/tmp}" "$$" "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM"
  fi
  # `read -N` is a builtin (no process); it keeps trailing newlines, which JSON ignores.
  BPCS_INPUT='' _BPCS_TMPDIR_READY=0
  IFS= read -r -d '' -N "$((BPCS_MAX_INPUT_BYTES + 1))" BPCS_INPUT || true
  # The common case, a canonical request of ordinary size for the Bash parser, takes the fast
  # path; everything else (the size limit, jq, the general parser, a parse error) is deferred.
  _BPCS_SALVAGE=1 _BPCS_T=() _BPCS_V=() _BPCS_K=() _BPCS_J=() _BPCS_LAZY=''
  if [[ $BPCS_JSON_PARSER != jq ]] && ((${#BPCS_INPUT} < BPCS_JQ_THRESHOLD_BYTES && ${#BPCS_INPUT} <= BPCS_MAX_INPUT_BYTES)) &&
    _bpcs_parse_canonical "$BPCS_INPUT"; then
    # The envelope checks of _bpcs_init_checks as one condition (every envelope value of a
    # canonical request is a string, dry_run a boolean): when it holds, they would all pass
    # and set these values; when not, they run one by one and name what failed.
    BPCS_JSON_PARSER=bash BPCS_MESSAGE_ID=${_BPCS_E[0]} BPCS_TRACE_ID=${_BPCS_E[1]} BPCS_ACTION=${_BPCS_E[6]} \
      BPCS_NODE=${_BPCS_E[7]} BPCS_TRANSPORT=${_BPCS_E[8]} BPCS_DEPLOY_MODE=${_BPCS_E[9]} \
      BPCS_DRY_RUN=${_BPCS_E[11]} BPCS_TIMEOUT_MS=${_BPCS_E[12]}
    if [[ ${_BPCS_E[10]} == rcs_v1 && -n $BPCS_NODE && ${#BPCS_TIMEOUT_MS} -le 9 && $BPCS_TIMEOUT_MS != 0* &&
      ${_BPCS_T[\$$_BPCS_SEP${_BPCS_CANON_PARAMS_PATH}]-} == object &&
      $BPCS_TRACE_ID != 00000000000000000000000000000000 ]] &&
      _bpcs_is_trace "$BPCS_TRACE_ID" && _bpcs_is_uuid "$BPCS_MESSAGE_ID" && _bpcs_is_action "$BPCS_ACTION"; then
      _BPCS_SALVAGE=0
      return 0
    fi
  else
    _bpcs_init_parse
  fi
  _bpcs_init_checks
}

# The deferred part of bpcs_init: the size limit, the choice of parser, the jq and general
# parsers and their errors.
_bpcs_init_parse() { # @rune-cold: requests that are not canonical, large, or for jq
  if ((${#BPCS_INPUT} > BPCS_MAX_INPUT_BYTES)); then
    bpcs_fail 2 DOCUMENT_TOO_LARGE "request exceeds $BPCS_MAX_INPUT_BYTES bytes"
  fi
  if [[ -z $BPCS_JSON_PARSER ]]; then
    # A typical request (a few hundred bytes) parses faster in Bash than jq starts; jq only
    # pays for itself on large documents.
    if ((${#BPCS_INPUT} >= BPCS_JQ_THRESHOLD_BYTES)) && command -v jq >/dev/null 2>&1; then
      BPCS_JSON_PARSER=jq
    else
      BPCS_JSON_PARSER=bash
    fi
  fi
  local parsed=0
  _BPCS_T=()
  _BPCS_V=()
  _BPCS_K=()
  _BPCS_J=()
  _BPCS_LAZY=
  if [[ $BPCS_JSON_PARSER == jq ]]; then
    _bpcs_parse_jq "$BPCS_INPUT" && parsed=1
  else
    BPCS_JSON_PARSER=bash
    if _bpcs_parse_canonical "$BPCS_INPUT"; then
      parsed=1
    else
      _BPCS_T=()
      _BPCS_V=()
      _BPCS_K=()
      _bpcs_parse_bash "$BPCS_INPUT" && parsed=1
    fi
  fi
  if ((parsed == 0)); then
    local code=MALFORMED_JSON
    [[ $_BPCS_PARSE_ERROR == *deeper* ]] && code=DOCUMENT_TOO_DEEP
    bpcs_fail 2 "$code" "${_BPCS_PARSE_ERROR:-request is not valid JSON}"
  fi
}

# The envelope checks one by one, each failure with its own message (bpcs_init runs them only
# when its one-condition form did not hold).
_bpcs_init_checks() { # @rune-cold: requests that fail the envelope checks
  _bpcs_fill_envelope
  # Nothing unchecked may reach a failure document (the ids are written into it unescaped).
  BPCS_TRACE_ID='' BPCS_MESSAGE_ID='' BPCS_ACTION='' BPCS_NODE='' BPCS_TRANSPORT='' BPCS_DEPLOY_MODE=''
  BPCS_DRY_RUN=false BPCS_TIMEOUT_MS=0
  [[ ${_BPCS_T['$']} == object ]] || _bpcs_schema_error 'the request is not a JSON object' ''

  # Ids first, so every later error is correlated. The envelope's paths are looked up in the
  # tables directly (p: the root and a separator, S: a separator; no bpcs_get call each).
  local p=\$$_BPCS_SEP S=$_BPCS_SEP
  _BPCS_SALVAGE=0
  BPCS_TRACE_ID=
  BPCS_MESSAGE_ID=
  REPLY=${_BPCS_V[${p}message_metadata${S}trace_id]-}
  if _bpcs_is_trace "$REPLY" && [[ $REPLY != 00000000000000000000000000000000 ]]; then
    BPCS_TRACE_ID=$REPLY
  else
    _bpcs_schema_error 'message_metadata.trace_id must be 32 lowercase hex digits' /message_metadata/trace_id
  fi
  REPLY=${_BPCS_V[${p}message_metadata${S}message_id]-}
  _bpcs_is_uuid "$REPLY" || _bpcs_schema_error 'message_metadata.message_id must be a lowercase UUID' /message_metadata/message_id
  BPCS_MESSAGE_ID=$REPLY

  REPLY=${_BPCS_T[${p}payload${S}schema_version]-absent}
  if [[ $REPLY != string ]]; then
    _bpcs_schema_error 'payload.schema_version is missing' /payload/schema_version
  fi
  REPLY=${_BPCS_V[${p}payload${S}schema_version]}
  if [[ $REPLY != rcs_v1 ]]; then
    local version=$REPLY
    bpcs_json_string "${version:0:64}"
    bpcs_fail 2 UNSUPPORTED_SCHEMA_VERSION "unsupported RCS schema_version '${version:0:64}' (this plugin accepts rcs_v1)" \
      "{\"schema_version\":$REPLY,\"supported\":[\"rcs_v1\"]}"
  fi

  BPCS_ACTION=${_BPCS_V[${p}routing${S}action]-}
  BPCS_NODE=${_BPCS_V[${p}routing${S}node]-}
  BPCS_TRANSPORT=${_BPCS_V[${p}routing${S}transport]-}
  BPCS_DEPLOY_MODE=${_BPCS_V[${p}routing${S}deploy_mode]-}
  _bpcs_is_action "$BPCS_ACTION" || _bpcs_schema_error 'routing.action is missing or invalid' /routing/action
  [[ -n $BPCS_NODE ]] || _bpcs_schema_error 'routing.node is missing' /routing/node

  REPLY=${_BPCS_T[${p}payload${S}data${S}input_parameters]-absent}
  [[ $REPLY == object ]] || _bpcs_schema_error 'payload.data.input_parameters must be an object' /payload/data/input_parameters
  REPLY=${_BPCS_T[${p}payload${S}data${S}options${S}dry_run]-absent}
  [[ $REPLY == boolean ]] || _bpcs_schema_error 'payload.data.options.dry_run must be a boolean' /payload/data/options/dry_run
  REPLY=${_BPCS_V[${p}payload${S}data${S}options${S}dry_run]}
  BPCS_DRY_RUN=$REPLY
  REPLY=${_BPCS_V[${p}payload${S}data${S}options${S}timeout_ms]-}
  [[ -n $REPLY && ${#REPLY} -le 9 && $REPLY != 0* && $REPLY != *[!0-9]* ]] || _bpcs_schema_error 'payload.data.options.timeout_ms must be a positive integer' /payload/data/options/timeout_ms
  BPCS_TIMEOUT_MS=$REPLY
  return 0
}
