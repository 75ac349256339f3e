/**
 * A Splunk HEC-format HTTP endpoint on 127.0.0.1 for the shipping tests and benchmarks (one
 * instance, or several `rune serve` instances shipping to it). Every request's events are
 * recorded as they arrive, with the batch they came in; `mode` decides the answer:
 *
 * - `answer` (default): 200 after `delayMs` (a slow receiver keeps a delivery in flight);
 * - `hold`: the events are read and recorded, then the request is never answered (a receiver
 *   that took a batch and whose acknowledgement is lost: the sender dies or times out);
 * - `hang`: the request is neither read nor answered.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One shipped record as the HEC sink sends it. */
export interface HecEvent {
  event: { record_id: string; kind: string; record: Record<string, unknown> };
  fields: { record_id: string };
}

/** One request: when it arrived (`Date.now()`) and the record ids it carried, in order. */
export interface HecBatch {
  at: number;
  ids: string[];
  /** Answered 200 (false while held, or when the sender went away first). */
  answered: boolean;
}

/** The receiver's answering mode (see the module comment). */
export type HecMode = 'answer' | 'hold' | 'hang';

/** The HEC token the receiver expects (`Authorization: Splunk <token>`). */
export const HEC_TOKEN = 'hec-token-1';

/** A running receiver. */
export interface HecReceiver {
  port: number;
  /** The sink URL to configure. */
  url: string;
  events: HecEvent[];
  batches: HecBatch[];
  requests(): number;
  mode: HecMode;
  delayMs: number;
  /** Resolves with the next batch recorded from now on. */
  nextBatch(): Promise<HecBatch>;
  stop(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a receiver on `port` (0: a free one); `hang` starts it in mode `hang`. */
export async function startHec(port = 0, options: { hang?: boolean } = {}): Promise<HecReceiver> {
  const held: { destroy(): void }[] = [];
  const waiters: ((batch: HecBatch) => void)[] = [];
  let requests = 0;
  const receiver = {
    events: [] as HecEvent[],
    batches: [] as HecBatch[],
    mode: (options.hang === true ? 'hang' : 'answer') as HecMode,
    delayMs: 0,
  };
  const server: Server = createServer((request, response) => {
    requests++;
    const hold = () => held.push(response.socket ?? { destroy: () => {} });
    if (receiver.mode === 'hang') {
      hold();
      return;
    }
    void readBody(request).then((body) => {
      const ok =
        request.url === '/services/collector/event' &&
        request.headers.authorization === `Splunk ${HEC_TOKEN}`;
      if (!ok) {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end('{"text":"Invalid token","code":4}');
        return;
      }
      const events = body
        .split('\n')
        .filter((text) => text !== '')
        .map((line) => JSON.parse(line) as HecEvent);
      receiver.events.push(...events);
      const batch: HecBatch = {
        at: Date.now(),
        ids: events.map((event) => event.fields.record_id),
        answered: false,
      };
      receiver.batches.push(batch);
      for (const waiter of waiters.splice(0)) waiter(batch);
      if (receiver.mode === 'hold') {
        hold();
        return;
      }
      const answer = () => {
        if (response.destroyed) return;
        batch.answered = true;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"text":"Success","code":0}');
      };
      if (receiver.delayMs > 0) setTimeout(answer, receiver.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return Object.assign(receiver, {
    port: bound,
    url: `http://127.0.0.1:${bound}/services/collector/event`,
    requests: () => requests,
    nextBatch: () => new Promise<HecBatch>((resolve) => waiters.push(resolve)),
    async stop() {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}
