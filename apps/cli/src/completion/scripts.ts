/**
 * The scripts `rune completion [bash|zsh]` prints. Both hand the command line up to the cursor
 * to `rune __complete` and get whole words back (see complete.ts). Readline replaces only the
 * part of the word after its last break character (COMP_WORDBREAKS: `=`, `:`; `@` stays in the
 * word), so the bash script strips what lies before it; a candidate ending in `=` (a parameter name) gets no trailing space so the value can be
 * typed at once. When RUNE offers nothing (a file flag), both fall back to file names.
 */
import { RuneError } from '@rune/protocol';

/** The shells `rune completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
/** A shell `rune completion` supports. */
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

const BASH = `###-begin-rune-completions-###
# rune completion for bash. Install: rune completion bash >> ~/.bashrc
_rune_completions() {
  local line="\${COMP_LINE:0:COMP_POINT}"
  local full prefix="" candidate i breaks="\${COMP_WORDBREAKS//@/}"
  local -a candidates
  mapfile -t candidates < <(rune __complete "$line" 2>/dev/null)
  # rune answers with whole words; readline replaces only the part after the last word-break
  # character (= and :, but not @, which readline keeps in the word) — strip what precedes it.
  full="\${line##*[[:space:]]}"
  for (( i = \${#full} - 1; i >= 0; i-- )); do
    if [[ $breaks == *"\${full:i:1}"* ]]; then prefix="\${full:0:i+1}"; break; fi
  done
  COMPREPLY=()
  for candidate in "\${candidates[@]}"; do
    [[ -z $candidate ]] && continue
    [[ $candidate == *= ]] && compopt -o nospace 2>/dev/null
    COMPREPLY+=("\${candidate#"$prefix"}")
  done
  return 0
}
complete -o bashdefault -o default -F _rune_completions rune
###-end-rune-completions-###
`;

const ZSH = `#compdef rune
###-begin-rune-completions-###
# rune completion for zsh. Install: rune completion zsh >> ~/.zshrc (after compinit)
_rune() {
  local -a candidates open closed
  candidates=(\${(f)"$(rune __complete "$LBUFFER" 2>/dev/null)"})
  open=(\${(M)candidates:#*=})
  closed=(\${candidates:#*=})
  (( \${#open} )) && compadd -Q -S '' -- "\${open[@]}"
  (( \${#closed} )) && compadd -Q -- "\${closed[@]}"
  (( \${#candidates} )) || _files
}
compdef _rune rune
###-end-rune-completions-###
`;

/** The completion script for `shell`. */
export function completionScript(shell: CompletionShell): string {
  return shell === 'zsh' ? ZSH : BASH;
}

/**
 * The shell `rune completion` was asked for: the argument, else the login shell ($SHELL) when it
 * is zsh, else bash. Throws INVALID_ARGUMENT for any other name.
 */
export function completionShell(
  requested: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): CompletionShell {
  if (requested === undefined) return /zsh$/.test(env.SHELL ?? '') ? 'zsh' : 'bash';
  if ((COMPLETION_SHELLS as readonly string[]).includes(requested)) {
    return requested as CompletionShell;
  }
  throw new RuneError(
    'INVALID_ARGUMENT',
    `no completion script for ${requested}: choose ${COMPLETION_SHELLS.join(' or ')}`,
    { source: { component: 'rune-cli' } },
  );
}
