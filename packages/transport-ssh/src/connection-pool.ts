/**
 * Connection reuse: one SSH connection per (user, host, port, jump chain), shared by every exec
 * to that node, with at most `maxSessions` session channels open at once (more wait in a queue).
 *
 * OpenSSH refuses the session beyond its `MaxSessions` (default 10) with "open failed"; when that
 * happens while other sessions are open, the connection lowers its own limit to what the server
 * accepted and the request waits for a free slot instead of failing. One slot above the limit is
 * reserved for kill commands, so a timeout can always be enforced (keep `maxSessions` below the
 * server's MaxSessions). New handshakes are paced by a shared {@link Semaphore}, because OpenSSH's
 * `MaxStartups` (10:30:100) drops unauthenticated connections beyond 10 at once.
 *
 * Closing is bounded: ssh2's `end()` half-closes the socket and waits for the peer's FIN, which a
 * frozen host never sends, and ssh2's `destroy()` does nothing once the socket was ended. So each
 * connection keeps the stream it was opened on and destroys it after a short grace.
 */
import type { Duplex } from 'node:stream';
import { RuneError } from '@rune/protocol';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import type { SshClient } from './ssh-connector.js';

/** A counting semaphore with a FIFO queue. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private limit: number) {}

  /** Waits for a slot; `abort` rejects the wait (without taking a slot). */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.active++;
        resolve();
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(grant);
        if (index !== -1) this.waiters.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    this.active--;
    this.wake();
  }

  /** Changes the limit (never below 1). */
  setLimit(limit: number): void {
    this.limit = Math.max(1, limit);
    this.wake();
  }

  get inUse(): number {
    return this.active;
  }

  get size(): number {
    return this.limit;
  }

  private wake(): void {
    while (this.active < this.limit && this.waiters.length > 0) this.waiters.shift()?.();
  }
}

let nextConnectionId = 1;

/** How long the server may take to answer a channel open request. */
const CHANNEL_OPEN_TIMEOUT_MS = 30_000;

const isOpenFailure = (error: unknown): boolean =>
  error instanceof Error && /open failed|channel open failure/i.test(error.message);

/** One live SSH connection and its session slots. */
export class SshConnection {
  readonly id = nextConnectionId++;
  closed = false;
  /** How many execs have used this connection (the first one opened it). */
  uses = 0;
  private readonly sessions: Semaphore;
  private readonly closeListeners = new Set<(error: RuneError) => void>();
  private closeError: RuneError | undefined;

  constructor(
    readonly key: string,
    readonly client: SshClient,
    maxSessions: number,
    readonly description: string,
    private readonly socket?: Duplex,
  ) {
    this.sessions = new Semaphore(maxSessions);
    let lastError: Error | undefined;
    client.on('error', (error: Error) => {
      lastError = error;
    });
    client.on('close', () => {
      this.closed = true;
      this.closeError = new RuneError(
        'CONNECTION_LOST',
        `the SSH connection to ${description} was lost${lastError ? `: ${lastError.message}` : ''}`,
        { details: { connection: description }, cause: lastError },
      );
      for (const listener of this.closeListeners) listener(this.closeError);
      this.closeListeners.clear();
    });
  }

  /** Calls `listener` once when the connection closes (immediately if it already has). */
  onClose(listener: (error: RuneError) => void): () => void {
    if (this.closed) {
      listener(this.lostError());
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  lostError(): RuneError {
    return (
      this.closeError ??
      new RuneError('CONNECTION_LOST', `the SSH connection to ${this.description} is closed`)
    );
  }

  /**
   * Opens an exec channel within the session limit; the slot is freed when the channel closes.
   * `onOpen` runs synchronously inside ssh2's callback, before ssh2 parses anything else from the
   * same read: a listener that must not miss an event (the exit status of a command that finished
   * before the reply to the exec request was read) is attached there, not after the `await`.
   */
  async exec(
    command: string,
    signal?: AbortSignal,
    onOpen?: (channel: ClientChannel) => void,
  ): Promise<ClientChannel> {
    for (;;) {
      await this.sessions.acquire(signal);
      try {
        const channel = await this.rawExec(command, onOpen);
        channel.once('close', () => this.sessions.release());
        return channel;
      } catch (error) {
        this.sessions.release();
        if (this.closed) throw this.lostError();
        // The server's MaxSessions is below ours: adopt it and wait for a slot.
        if (isOpenFailure(error) && this.sessions.inUse > 0) {
          this.sessions.setLimit(this.sessions.inUse);
          continue;
        }
        throw new RuneError(
          'CHANNEL_OPEN_FAILED',
          `${this.description} refused to open a session channel: ${error instanceof Error ? error.message : String(error)}`,
          { details: { connection: this.description }, cause: error },
        );
      }
    }
  }

  /** Opens an exec channel outside the session limit (kill commands only). */
  execUnlimited(command: string): Promise<ClientChannel> {
    return this.rawExec(command);
  }

  /** Opens an SFTP session within the session limit; call `end()` on it when done. */
  async sftp(signal?: AbortSignal): Promise<SFTPWrapper> {
    await this.sessions.acquire(signal);
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
        this.client.sftp((error, session) => (error ? reject(error) : resolve(session)));
      });
      sftp.once('close', () => this.sessions.release());
      return sftp;
    } catch (error) {
      this.sessions.release();
      if (this.closed) throw this.lostError();
      throw error;
    }
  }

  /** The current session limit (lowered when the server's MaxSessions is smaller). */
  get sessionLimit(): number {
    return this.sessions.size;
  }

  close(): void {
    if (!this.closed) this.client.end();
  }

  /** Tears the connection down at once: the client and the stream under it. */
  destroy(): void {
    this.client.destroy();
    this.socket?.destroy();
  }

  private rawExec(
    command: string,
    onOpen?: (channel: ClientChannel) => void,
  ): Promise<ClientChannel> {
    if (this.closed) return Promise.reject(this.lostError());
    return new Promise<ClientChannel>((resolve, reject) => {
      let answered = false;
      // A server that never answers a channel open must not hang the run forever.
      const timer = setTimeout(() => {
        answered = true;
        reject(
          new Error(
            `the server did not answer the session request within ${CHANNEL_OPEN_TIMEOUT_MS} ms`,
          ),
        );
      }, CHANNEL_OPEN_TIMEOUT_MS);
      try {
        this.client.exec(command, (error, channel) => {
          clearTimeout(timer);
          if (answered) {
            channel?.close();
            return;
          }
          answered = true;
          if (error) {
            reject(error);
            return;
          }
          onOpen?.(channel);
          resolve(channel);
        });
      } catch (error) {
        clearTimeout(timer);
        reject(error);
      }
    });
  }
}

/**
 * Shares connections by key. `open` runs once per key at a time; a failed or closed connection is
 * forgotten so the next request opens a new one.
 */
export class ConnectionPool {
  private readonly connections = new Map<string, Promise<SshConnection>>();
  private readonly live = new Set<SshConnection>();
  private closing = false;

  /** The connection for `key`, opening it with `open` when there is none; `reused` tells which. */
  async get(
    key: string,
    open: () => Promise<SshConnection>,
  ): Promise<{ connection: SshConnection; reused: boolean }> {
    if (this.closing) {
      throw new RuneError('CONNECTION_LOST', 'the SSH transport is closed');
    }
    const existing = this.connections.get(key);
    if (existing !== undefined) {
      const connection = await existing;
      if (!connection.closed) {
        connection.uses++;
        return { connection, reused: true };
      }
      if (this.connections.get(key) === existing) this.connections.delete(key);
      return this.get(key, open);
    }
    const opening = open();
    this.connections.set(key, opening);
    try {
      const connection = await opening;
      if (this.closing) {
        connection.close();
        throw new RuneError('CONNECTION_LOST', 'the SSH transport is closed');
      }
      this.live.add(connection);
      connection.uses++;
      connection.onClose(() => {
        this.live.delete(connection);
        if (this.connections.get(key) === opening) this.connections.delete(key);
      });
      return { connection, reused: false };
    } catch (error) {
      if (this.connections.get(key) === opening) this.connections.delete(key);
      throw error;
    }
  }

  /** Number of open connections. */
  get size(): number {
    return this.live.size;
  }

  /**
   * Ends every connection and waits until they are closed; a connection still open after
   * `graceMs` has its socket destroyed, so this resolves in bounded time and leaves no handle open.
   */
  async close(graceMs = 1000): Promise<void> {
    this.closing = true;
    const pending = [...this.connections.values()];
    this.connections.clear();
    const settled = await Promise.allSettled(pending);
    const all = new Set(this.live);
    for (const result of settled) if (result.status === 'fulfilled') all.add(result.value);
    await Promise.all(
      [...all].map(
        (connection) =>
          new Promise<void>((resolve) => {
            if (connection.closed) return resolve();
            const timer = setTimeout(() => {
              connection.destroy();
              resolve();
            }, graceMs);
            connection.onClose(() => {
              clearTimeout(timer);
              resolve();
            });
            connection.close();
          }),
      ),
    );
    this.live.clear();
  }
}
