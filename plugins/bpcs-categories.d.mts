/** The part of one EPS catalog entry the generator reads. */
export interface CategoryCatalogEntry {
  readonly category: string;
}
/** The library holding the generated block (plugins/lib/bpcs.sh). */
export declare const BPCS_LIB_FILE: string;
/** The command that regenerates the block, for messages. */
export declare const REGENERATE_COMMAND: string;
/** The generated `_bpcs_category` function (with its begin/end markers) for `catalog`. */
export declare function renderCategoryBlock(
  catalog: Readonly<Record<string, CategoryCatalogEntry>>,
): string;
/** `text` with its generated block replaced by `block`; throws when the markers are missing. */
export declare function replaceCategoryBlock(text: string, block: string): string;
