/**
 * The one sha256 helper of RUNE: plugins are cached, verified and audited by the lowercase hex
 * sha256 of their bytes, so every place that computes one must compute it the same way.
 */
import { createHash } from 'node:crypto';

/** Lowercase hex sha256 of `content` (a string is hashed as UTF-8). */
export function sha256Hex(content: Uint8Array | string): string {
  return createHash('sha256').update(content).digest('hex');
}
