/**
 * @rune/cli — the `rune` command. It has no library surface: this module exports nothing, on
 * purpose. The CLI parses flags and renders; what it runs is `@rune/core` (embed that instead),
 * the documents it prints are `@rune/protocol`'s run documents. See docs/cli.md.
 */
export {};
