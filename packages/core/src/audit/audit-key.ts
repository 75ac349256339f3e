/**
 * The key that signs the audit trail. A hash chain alone proves nothing against someone who can
 * write the log: they edit a record and recompute every hash after it. So every record also
 * carries an Ed25519 signature over its hash, made with a private key kept outside the log
 * (`[audit] key_file`, default `$XDG_CONFIG_HOME/rune/audit-key.pem`). Whoever can write the log
 * but not read the key cannot produce a record that verifies; an auditor verifies with the public
 * key alone (`rune audit key` exports it).
 *
 * The key is created on first use (PKCS#8 PEM, mode 0600, directory 0700) by writing a private
 * temporary file and `link()`ing it into place, so concurrent first runs agree on one key. An
 * existing key is used only when nobody else can read or replace it: the file is not readable or
 * writable by group or others, and the file and every directory above it pass the safe-path rule
 * (owned by this user or root, not group/other-writable, the file not a symlink).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { RuneError } from '@rune/protocol';
import { findUnsafePathComponent, sha256Hex } from '@rune/transport';
import { fsyncPath } from '../durable-fs.js';

/** Signs audit record hashes. */
export interface AuditSigner {
  /** First 16 hex digits of the sha256 of the public key (SPKI DER); stored in each record. */
  readonly keyId: string;
  /** Base64 Ed25519 signature of a record hash. */
  sign(hash: string): string;
  /** The public key, SPKI PEM (what `rune audit key` prints). */
  readonly publicKeyPem: string;
}

/** What is signed: a domain-separated record hash, so the key signs nothing else by accident. */
function signedMessage(hash: string): Buffer {
  return Buffer.from(`rune-audit-v2\n${hash}`, 'utf8');
}

/** The key id of a public key: first 16 hex digits of sha256 over its SPKI DER. */
export function auditKeyId(publicKey: KeyObject): string {
  return sha256Hex(publicKey.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

/** True when `signature` (base64) is `publicKey`'s signature of record hash `hash`. */
export function verifyAuditSignature(
  publicKey: KeyObject,
  hash: string,
  signature: string,
): boolean {
  try {
    return verify(null, signedMessage(hash), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** A signer for an Ed25519 private key. */
export function createAuditSigner(privateKey: KeyObject): AuditSigner {
  const publicKey = createPublicKey(privateKey);
  return {
    keyId: auditKeyId(publicKey),
    publicKeyPem: String(publicKey.export({ type: 'spki', format: 'pem' })),
    sign: (hash) => sign(null, signedMessage(hash), privateKey).toString('base64'),
  };
}

function keyError(
  path: string,
  message: string,
  details: Record<string, unknown>,
  cause?: unknown,
) {
  return new RuneError('AUDIT_WRITE_FAILED', `audit signing key ${path}: ${message}`, {
    source: { component: 'rune-core' },
    details: { key_file: path, ...details },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Writes a fresh key to `path` unless one appeared meanwhile. */
function createKeyFile(path: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = String(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    const bytes = Buffer.from(pem);
    let written = 0;
    while (written < bytes.byteLength) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
    fsyncPath(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
}

/**
 * Loads the audit signing key at `path`, creating it (0600, directory 0700) when it does not
 * exist. Throws AUDIT_WRITE_FAILED when it cannot be created or read, is not an Ed25519 private
 * key, is readable or writable by group or others, or sits on a path another user could change.
 */
export async function loadOrCreateAuditKey(
  path: string,
  options: { uid?: number } = {},
): Promise<AuditSigner> {
  const uid = options.uid ?? process.getuid?.() ?? 0;
  try {
    statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw keyError(
        path,
        'cannot be read',
        { errno: (error as NodeJS.ErrnoException).code },
        error,
      );
    }
    try {
      createKeyFile(path);
    } catch (creating) {
      const code = (creating as NodeJS.ErrnoException).code;
      throw keyError(
        path,
        `cannot be created${code === undefined ? '' : ` (${code})`}`,
        { errno: code },
        creating,
      );
    }
  }
  const unsafe = await findUnsafePathComponent(path, uid);
  if (unsafe !== undefined) {
    throw keyError(
      path,
      `${unsafe} can be changed by another user (or is a symlink); refusing to sign with it`,
      { unsafe_component: unsafe },
    );
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw keyError(
      path,
      `mode ${mode.toString(8).padStart(4, '0')} lets group or others read it; chmod 600 it (and consider it leaked)`,
      { mode: mode.toString(8) },
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(path));
  } catch (error) {
    throw keyError(path, 'is not a readable PEM private key', {}, error);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw keyError(path, `is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`, {});
  }
  return createAuditSigner(privateKey);
}

/**
 * Reads a verification key: a public key (SPKI PEM, as `rune audit key` prints it) or the private
 * key file itself. Throws INVALID_ARGUMENT when it is neither an Ed25519 public nor private key.
 */
export function readAuditPublicKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(readFileSync(path));
  } catch (error) {
    throw new RuneError('INVALID_ARGUMENT', `cannot read a public key from ${path}`, {
      cause: error,
      source: { component: 'rune-core' },
      details: { path },
    });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new RuneError('INVALID_ARGUMENT', `${path} is not an Ed25519 key`, {
      source: { component: 'rune-core' },
      details: { path, type: key.asymmetricKeyType },
    });
  }
  return key;
}
