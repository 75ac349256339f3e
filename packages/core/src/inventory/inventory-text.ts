/**
 * Parsing inventory text of any supported format in one call. A module of its own so that
 * `loadInventory` (inventory.ts) can load the Ansible parsers only when a file needs them: a
 * run with RUNE's own inventory, or none, never evaluates them.
 */
import { parseAnsibleInventory } from './ansible-inventory.js';
import {
  detectInventoryFormat,
  type Inventory,
  type InventoryFormat,
  parseInventory,
} from './inventory.js';

/** Options of {@link parseInventoryText}. */
export interface ParseInventoryTextOptions {
  /** File name, used to detect the format and in error messages. */
  file: string;
  /** Skip detection and read the text as this format. */
  format?: InventoryFormat;
}

/** Parses inventory text in any supported format (detected from the name and the text). */
export function parseInventoryText(text: string, options: ParseInventoryTextOptions): Inventory {
  const format = options.format ?? detectInventoryFormat(options.file, text);
  if (format === 'rune') return parseInventory(text, { file: options.file });
  return parseAnsibleInventory(text, { file: options.file, format });
}
