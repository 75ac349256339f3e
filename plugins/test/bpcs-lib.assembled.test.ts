/**
 * The whole BPCS library suite (bpcs-lib.test.ts) once more, against the library as the assembler
 * ships it: the `@rune-cold` functions (failure documents, escapes, invalid UTF-8, the jq parser)
 * are stubs that load their definitions from the plugin's own text on first call.
 */
process.env.BPCS_PROBE_ASSEMBLED = '1';
await import('./bpcs-lib.test.js');
