/**
 * "Did you mean" suggestions for unknown node, group and tag names: the closest candidates by
 * Damerau-Levenshtein (optimal string alignment) distance, within a budget that grows with the
 * length of the name, so `web1` suggests `web01` but `x` suggests nothing.
 */
import damerauLevenshtein from 'damerau-levenshtein';

/**
 * Edit distance (insertions, deletions, substitutions, adjacent transpositions), from the
 * `damerau-levenshtein` package: it counts a swap of two neighbours (`wbe01` for `web01`) as one
 * edit, which plain Levenshtein packages (leven, fastest-levenshtein) count as two.
 */
export function editDistance(a: string, b: string): number {
  return damerauLevenshtein(a, b).steps;
}

/** At most `limit` candidates close to `name`, best first (ties in candidate order). */
export function suggestNames(name: string, candidates: Iterable<string>, limit = 3): string[] {
  const budget = Math.max(1, Math.floor(name.length / 3));
  const scored: { candidate: string; distance: number; order: number }[] = [];
  let order = 0;
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= budget) scored.push({ candidate, distance, order });
    order++;
  }
  scored.sort((x, y) => x.distance - y.distance || x.order - y.order);
  return scored.slice(0, limit).map((entry) => entry.candidate);
}
