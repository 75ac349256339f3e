/**
 * YAML read with positions: how RUNE's YAML files (inventories, the RBAC policy, alert rules)
 * turn the JSON pointer of a schema violation into the line:column an operator can open. One
 * copy, so every file RUNE reads points at the same place for the same mistake.
 */
import { type Document, isMap, LineCounter, parseDocument } from 'yaml';

/** A 1-based line and column in the text. */
export interface YamlLocation {
  line: number;
  column: number;
}

/** The first syntax error of a YAML text. */
export interface YamlSyntaxError {
  /** The first line of the parser's message. */
  message: string;
  /** The parser's error code (e.g. `DUPLICATE_KEY`). */
  code: string;
  location: YamlLocation | undefined;
  /** The parser's error itself (for `cause`). */
  error: unknown;
}

/** A parsed YAML text that can say where a JSON pointer is. */
export interface LocatedYaml {
  readonly document: Document;
  /** The first syntax error, if any (the document is then not to be used). */
  readonly syntaxError: YamlSyntaxError | undefined;
  /**
   * Where `pointer` (RFC 6901) is: for a member of a mapping, its key (so an unexpected key is
   * pointed at itself, not at its parent); otherwise the node. Undefined when nothing matches.
   */
  locate(pointer: string): YamlLocation | undefined;
}

/** The segments of an RFC 6901 JSON pointer (`''` is the whole document). */
export function jsonPointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * How many alias expansions one document may use. YAML aliases can multiply a small text into a
 * huge value ("billion laughs"); a file RUNE reads that needs more is refused, not expanded.
 */
export const YAML_MAX_ALIAS_COUNT = 100;

/**
 * The plain value of a parsed document, with aliases bounded by {@link YAML_MAX_ALIAS_COUNT}.
 * Throws the parser's error (e.g. too many aliases): callers turn it into their EPS error.
 */
export function yamlValue(document: Document): unknown {
  return document.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
}

type Ranged = { range?: [number, number, number] } | null | undefined;

/** Parses `text` (unique keys required) and keeps the positions of its nodes. */
export function parseLocatedYaml(text: string): LocatedYaml {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const position = (offset: number): YamlLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const first = document.errors[0];
  const at = first?.linePos?.[0];
  return {
    document,
    syntaxError:
      first === undefined
        ? undefined
        : {
            message: first.message.split('\n')[0] ?? first.message,
            code: first.code,
            location: at === undefined ? undefined : { line: at.line, column: at.col },
            error: first,
          },
    locate(pointer) {
      const segments = jsonPointerSegments(pointer);
      // Sequence items are addressed by number; mapping keys are compared as text below.
      const path = segments.map((part) => (/^[0-9]+$/.test(part) ? Number(part) : part));
      let offset = (document.getIn(path, true) as Ranged)?.range?.[0];
      const parent = document.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find(
          (item) => String((item.key as { value?: unknown } | null)?.value) === segments.at(-1),
        );
        const keyRange = (pair?.key as Ranged)?.range;
        if (keyRange !== undefined) offset = keyRange[0];
      }
      return offset === undefined ? undefined : position(offset);
    },
  };
}
