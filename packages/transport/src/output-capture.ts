/**
 * Bounded capture of a process's output streams, shared by every transport so that a plugin can
 * never exhaust the control node's memory. stdout keeps the *head* (the JSON result is at the
 * start; anything beyond the cap is a protocol violation anyway); stderr keeps the *tail* (the
 * last lines of a log explain a failure best).
 */

/** Keeps the first `limit` bytes written and counts the rest. */
export class HeadCapture {
  private readonly chunks: Uint8Array[] = [];
  private kept = 0;
  /** Total bytes seen, including discarded ones. */
  totalBytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Uint8Array): void {
    this.totalBytes += chunk.byteLength;
    const room = this.limit - this.kept;
    if (room <= 0) return;
    const part = chunk.byteLength <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.byteLength;
  }

  get truncated(): boolean {
    return this.totalBytes > this.limit;
  }

  bytes(): Uint8Array {
    return concatChunks(this.chunks, this.kept);
  }
}

/** Keeps the last `limit` bytes written and counts the rest. */
export class TailCapture {
  private chunks: Uint8Array[] = [];
  private kept = 0;
  /** Total bytes seen, including discarded ones. */
  totalBytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Uint8Array): void {
    this.totalBytes += chunk.byteLength;
    if (this.limit <= 0) return;
    this.chunks.push(chunk);
    this.kept += chunk.byteLength;
    while (this.kept - (this.chunks[0]?.byteLength ?? 0) >= this.limit && this.chunks.length > 1) {
      this.kept -= this.chunks.shift()!.byteLength;
    }
  }

  get truncated(): boolean {
    return this.totalBytes > this.limit;
  }

  bytes(): Uint8Array {
    const all = concatChunks(this.chunks, this.kept);
    return all.byteLength > this.limit ? all.subarray(all.byteLength - this.limit) : all;
  }
}

function concatChunks(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
