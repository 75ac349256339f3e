/** Types of the `damerau-levenshtein` package (CommonJS, ships none). */
declare module 'damerau-levenshtein' {
  /** The distance between two strings: `steps` edits; `relative` and `similarity` in 0..1. */
  export default function damerauLevenshtein(
    a: string,
    b: string,
    limit?: number,
  ): { steps: number; relative: number; similarity: number };
}
