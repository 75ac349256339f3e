/**
 * Node-name globs: `*` (any run of characters), `?` (one character) and `[...]` classes
 * (`[0-9]`, `[!ab]` negated). Node names contain no `/`, so the path semantics of file globbing
 * libraries add nothing here; a 20-line translation to an anchored RegExp is easier to audit.
 */

const REGEXP_SPECIAL = /[\\^$.|+(){}]/;

/** Translates a node-name glob into an anchored RegExp. The glob must be balanced (see the selector parser). */
export function globToRegExp(glob: string): RegExp {
  let source = '^';
  let inClass = false;
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (inClass) {
      if (char === ']') {
        source += ']';
        inClass = false;
      } else if (char === '\\' || char === '^') source += `\\${char}`;
      else source += char;
    } else if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      inClass = true;
      source += '[';
      if (glob[i + 1] === '!') {
        source += '^';
        i++;
      }
    } else source += REGEXP_SPECIAL.test(char) ? `\\${char}` : char;
  }
  return new RegExp(`${source}$`);
}

/** True when `name` matches `glob` (whole-name match, case-sensitive). */
export function matchesGlob(glob: string, name: string): boolean {
  return globToRegExp(glob).test(name);
}
