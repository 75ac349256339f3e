/**
 * The hint of an EPS code: the error's own hint when it has one, otherwise the line the
 * protocol's EPS catalog (`@rune/protocol/eps-catalog`, bundled at build time) has for the code.
 * A code the catalog does not know (a plugin's own) has no hint.
 */
import { ERROR_CATALOG } from '@rune/protocol/eps-catalog';

export function hintOf(code: string, hint?: string): string | undefined {
  if (hint !== undefined && hint !== '') return hint;
  return Object.hasOwn(ERROR_CATALOG, code)
    ? ERROR_CATALOG[code as keyof typeof ERROR_CATALOG].description
    : undefined;
}
