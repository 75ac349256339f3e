/**
 * `IdentitiesOnly yes` with an agent, as OpenSSH applies it: the agent may sign only with the
 * keys of the configured identity files (useful when the private key is encrypted or absent and
 * the agent holds it), never with the other keys it holds — a server that limits failed
 * attempts, or logs every offered key, sees only the keys the operator chose.
 *
 * The public half of each identity file comes from `<file>.pub`, else from the private key file
 * itself (OpenSSH-format keys carry their public key unencrypted, even when the private part is).
 */
import { readFile } from 'node:fs/promises';
import type { IdentityCallback, ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';

/** The SSH wire blob of a public key line (`type base64 [comment]`), if it is one. */
function blobOfPublicKeyLine(text: string): Buffer | undefined {
  const fields = text.trim().split(/\s+/);
  const encoded = fields[1];
  if (encoded === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64');
}

/** The public key blob stored in an `openssh-key-v1` private key file (readable unencrypted). */
function blobOfOpenSshPrivateKey(text: string): Buffer | undefined {
  const match =
    /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (match === null) return undefined;
  const data = Buffer.from((match[1] as string).replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (!data.subarray(0, magic.length).equals(magic)) return undefined;
  let offset = magic.length;
  const readString = (): Buffer | undefined => {
    if (offset + 4 > data.length) return undefined;
    const length = data.readUInt32BE(offset);
    offset += 4;
    if (offset + length > data.length) return undefined;
    const value = data.subarray(offset, offset + length);
    offset += length;
    return value;
  };
  // ciphername, kdfname, kdfoptions, then the key count and the first public key.
  for (let field = 0; field < 3; field++) if (readString() === undefined) return undefined;
  if (offset + 4 > data.length || data.readUInt32BE(offset) < 1) return undefined;
  offset += 4;
  return readString();
}

/** The public key blob of an identity file, or undefined when it cannot be known. */
export async function publicKeyOfIdentityFile(file: string): Promise<Buffer | undefined> {
  try {
    const fromPub = blobOfPublicKeyLine(await readFile(`${file}.pub`, 'utf8'));
    if (fromPub !== undefined) return fromPub;
  } catch {
    // No .pub file: try the private key.
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const embedded = blobOfOpenSshPrivateKey(text);
  if (embedded !== undefined) return embedded;
  const parsed = ssh2.utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key instanceof Error || key === undefined ? undefined : key.getPublicSSH();
}

/** An ssh-agent client that lists only the keys in `allowed` (public key blobs). */
class IdentitiesOnlyAgent extends ssh2.OpenSSHAgent {
  constructor(
    socket: string,
    private readonly allowed: readonly Buffer[],
  ) {
    super(socket);
  }

  override getIdentities(callback: IdentityCallback<ParsedKey>): void {
    super.getIdentities((error, keys) => {
      if (error !== undefined && error !== null) {
        callback(error);
        return;
      }
      const kept = (keys ?? []).filter(
        (key): key is ParsedKey =>
          'getPublicSSH' in key && this.allowed.some((blob) => blob.equals(key.getPublicSSH())),
      );
      callback(undefined, kept);
    });
  }
}

/**
 * An agent restricted to the keys of `identityFiles`, or undefined when none of them has a
 * known public key (then the agent has nothing it may offer).
 */
export async function createIdentitiesOnlyAgent(
  socket: string,
  identityFiles: readonly string[],
): Promise<InstanceType<typeof ssh2.OpenSSHAgent> | undefined> {
  const allowed: Buffer[] = [];
  for (const file of identityFiles) {
    const blob = await publicKeyOfIdentityFile(file);
    if (blob !== undefined) allowed.push(blob);
  }
  if (allowed.length === 0) return undefined;
  return new IdentitiesOnlyAgent(socket, allowed);
}
