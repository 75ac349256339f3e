/**
 * "Did you mean" suggestions for unknown node, group and tag names: the closest candidates by
 * Damerau-Levenshtein (optimal string alignment) distance, within a budget that grows with the
 * length of the name, so `web1` suggests `web01` but `x` suggests nothing.
 */

/** Edit distance (insertions, deletions, substitutions, adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 0; i < rows; i++) (d[i] as number[])[0] = i;
  for (let j = 0; j < cols; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = value;
    }
  }
  return at(rows - 1, cols - 1);
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
