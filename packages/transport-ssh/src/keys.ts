/**
 * Private keys for authentication: each key file is read and parsed at most once per transport
 * (a fan-out to 100 nodes must not ask for a passphrase 100 times), and an encrypted key gets its
 * passphrase from the options, then the passphrase environment variable, then the prompt.
 *
 * A key that cannot be used is not an error here: it is `{ skipped: reason }`, and the connector
 * lists every reason in AUTH_FAILED when no identity was accepted.
 */
import { readFile } from 'node:fs/promises';
import type { ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';
import type { KeySource } from './ssh-connector.js';

/** Where a passphrase for an encrypted key may come from, in this order. */
export interface PassphraseSources {
  passphrase?: string;
  /** Name of the environment variable holding it. */
  passphraseEnv: string;
  env: Readonly<Record<string, string | undefined>>;
  prompt?: (keyFile: string) => Promise<string | undefined>;
}

/** A {@link KeySource} that caches each file's outcome (also a failed one). */
export class KeyLoader implements KeySource {
  private readonly cache = new Map<string, Promise<{ key: ParsedKey } | { skipped: string }>>();

  constructor(private readonly passphrases: PassphraseSources) {}

  load(file: string): Promise<{ key: ParsedKey } | { skipped: string }> {
    let cached = this.cache.get(file);
    if (cached === undefined) {
      cached = this.read(file);
      this.cache.set(file, cached);
    }
    return cached;
  }

  private async read(file: string): Promise<{ key: ParsedKey } | { skipped: string }> {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { skipped: code === 'ENOENT' ? 'missing' : `unreadable (${code ?? 'error'})` };
    }
    const parse = (passphrase?: string): ParsedKey | Error => {
      const parsed = ssh2.utils.parseKey(data, passphrase);
      return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    };
    let parsed = parse();
    if (parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message)) {
      const { passphraseEnv, env, prompt } = this.passphrases;
      let passphrase = this.passphrases.passphrase ?? env[passphraseEnv];
      if (passphrase === undefined && prompt !== undefined) passphrase = await prompt(file);
      if (passphrase === undefined) {
        return { skipped: `encrypted, no passphrase (set ${passphraseEnv} or use a TTY)` };
      }
      parsed = parse(passphrase);
      if (parsed instanceof Error) return { skipped: 'wrong passphrase' };
    }
    if (parsed instanceof Error) return { skipped: `not a usable private key (${parsed.message})` };
    if (!parsed.isPrivateKey()) return { skipped: 'not a private key' };
    return { key: parsed };
  }
}
