/**
 * The span reference of docs/observability.md ("Span reference"), read from the page itself, and
 * a check of exported spans against it: the tracing tests pass the page and what their OTLP
 * receiver decoded, so a span or attribute RUNE exports but the page does not list (or lists
 * under another span) fails them.
 */
import type { WireSpan } from './otlp-receiver.js';

/** The reference: span name -> the attributes it may carry; `request` for the HTTP spans. */
export interface SpanReference {
  spans: ReadonlyMap<string, ReadonlySet<string>>;
  /** Attributes allowed on every span (`rune.error.code`). */
  everywhere: ReadonlySet<string>;
  /** Every attribute of the attribute table. */
  attributes: ReadonlySet<string>;
}

/** The key of the HTTP request spans (`POST /v1/runs`, ...) in {@link SpanReference.spans}. */
export const REQUEST_SPAN = '<METHOD> <route>';

const REQUEST_NAME = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) \//;

const codeSpans = (cell: string): string[] =>
  [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');

/** The table rows (cells) that follow `heading` up to the next blank line after a table. */
function tableAfter(markdown: string, marker: string): string[][] {
  const start = markdown.indexOf(marker);
  if (start < 0) throw new Error(`docs/observability.md has no "${marker}"`);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of markdown.slice(start).split('\n')) {
    if (line.startsWith('|')) {
      inTable = true;
      const cells = line.split('|').slice(1, -1);
      if (!cells.every((cell) => /^\s*-+\s*$/.test(cell))) rows.push(cells);
    } else if (inTable) break;
  }
  return rows.slice(1); // the header
}

/** Reads the span reference (the span table and the attribute table after it). */
export function readSpanReference(markdown: string): SpanReference {
  const section = markdown.slice(markdown.indexOf('### Span reference'));
  const spans = new Map<string, Set<string>>();
  const everywhere = new Set<string>();
  for (const [name = '', , attributes = ''] of tableAfter(section, '| span ')) {
    const names = codeSpans(name);
    const allowed = new Set(codeSpans(attributes));
    if (names.length === 0) {
      for (const attribute of allowed) everywhere.add(attribute);
      continue;
    }
    spans.set(names[0] === REQUEST_SPAN ? REQUEST_SPAN : (names[0] ?? ''), allowed);
  }
  const attributes = new Set(
    tableAfter(section, '| attribute ').flatMap(([name = '']) => codeSpans(name)),
  );
  return { spans, everywhere, attributes };
}

/**
 * What is wrong between `spans` and the page: a span name it does not list, an attribute not
 * listed for that span, and (independent of the spans) an attribute of the span table missing
 * from the attribute table. Empty when everything matches.
 */
export function spanReferenceProblems(markdown: string, spans: readonly WireSpan[]): string[] {
  const reference = readSpanReference(markdown);
  const problems: string[] = [];
  for (const [, allowed] of reference.spans) {
    for (const attribute of allowed) {
      if (!reference.attributes.has(attribute)) {
        problems.push(`${attribute} is in the span table but not in the attribute table`);
      }
    }
  }
  for (const span of spans) {
    const key = REQUEST_NAME.test(span.name) ? REQUEST_SPAN : span.name;
    const allowed = reference.spans.get(key);
    if (allowed === undefined) {
      problems.push(`span ${span.name} is not in the span reference`);
      continue;
    }
    for (const attribute of Object.keys(span.attributes)) {
      if (!allowed.has(attribute) && !reference.everywhere.has(attribute)) {
        problems.push(`${span.name} has ${attribute}, which the reference does not list for it`);
      }
    }
  }
  return [...new Set(problems)];
}
