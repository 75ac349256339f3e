/**
 * Evaluates parsed selector terms against a set of named, tagged nodes.
 *
 * Order is deterministic: nodes appear in the order their first positive term names them, and
 * each atom expands in universe (inventory file) order. Exclusions apply to the whole
 * selection, whatever their position. A selection with only exclusions starts from every node.
 * Atoms that match nothing are collected as unknown instead of silently selecting nothing.
 */
import { matchesGlob } from './glob.js';
import type { SelectorAtom, SelectorTerm } from './selector.js';

/** What a selection is evaluated against. */
export interface SelectionUniverse {
  /** Every node, in a stable order (inventory file order). */
  nodes: readonly { name: string; tags: readonly string[] }[];
  /** Node names of a group, or undefined when there is no such group. */
  group(name: string): readonly string[] | undefined;
}

/** An atom that matched nothing. */
export interface UnknownReference {
  kind: SelectorAtom['kind'];
  value: string;
  /** The term it appeared in. */
  term: string;
}

/** Result of {@link evaluateSelection}. */
export interface SelectionEvaluation {
  /** Selected node names, de-duplicated, in deterministic order. */
  names: string[];
  /** Atoms that matched nothing (names are reported only when `resolveName` refuses them). */
  unknown: UnknownReference[];
}

/** Options of {@link evaluateSelection}. */
export interface EvaluateSelectionOptions {
  /**
   * Called for a name atom that is not a node of the universe. Return true to accept it as an
   * ad-hoc node (it is then selected under that name); false reports it as unknown.
   */
  acceptUnknownName?: (name: string) => boolean;
}

function matchAtom(
  atom: SelectorAtom,
  universe: SelectionUniverse,
  known: ReadonlySet<string>,
  options: EvaluateSelectionOptions,
): string[] | undefined {
  switch (atom.kind) {
    case 'name':
      if (known.has(atom.value)) return [atom.value];
      return options.acceptUnknownName?.(atom.value) === true ? [atom.value] : undefined;
    case 'group': {
      const members = universe.group(atom.value);
      return members === undefined ? undefined : [...members];
    }
    case 'tag': {
      const names = universe.nodes.filter((n) => n.tags.includes(atom.value)).map((n) => n.name);
      return names.length === 0 ? undefined : names;
    }
    case 'glob': {
      const names = universe.nodes
        .filter((n) => matchesGlob(atom.value, n.name))
        .map((n) => n.name);
      return names.length === 0 ? undefined : names;
    }
  }
}

/** Evaluates `terms` against `universe`. Never throws: unknown atoms are returned. */
export function evaluateSelection(
  terms: readonly SelectorTerm[],
  universe: SelectionUniverse,
  options: EvaluateSelectionOptions = {},
): SelectionEvaluation {
  const known = new Set(universe.nodes.map((n) => n.name));
  const unknown: UnknownReference[] = [];
  const selected: string[] = [];
  const seen = new Set<string>();
  const excluded = new Set<string>();
  let anyPositive = false;

  for (const term of terms) {
    let matched: string[] | undefined;
    for (const atom of term.atoms) {
      const names = matchAtom(atom, universe, known, options);
      if (names === undefined) {
        unknown.push({ kind: atom.kind, value: atom.value, term: term.text });
        matched = [];
        continue;
      }
      if (matched === undefined) matched = names;
      else {
        const keep = new Set(names);
        matched = matched.filter((name) => keep.has(name));
      }
    }
    if (term.exclude) {
      for (const name of matched ?? []) excluded.add(name);
    } else {
      anyPositive = true;
      for (const name of matched ?? []) {
        if (!seen.has(name)) {
          seen.add(name);
          selected.push(name);
        }
      }
    }
  }
  const base = anyPositive ? selected : universe.nodes.map((n) => n.name);
  return { names: base.filter((name) => !excluded.has(name)), unknown };
}
