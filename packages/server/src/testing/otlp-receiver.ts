/**
 * An in-process OTLP/HTTP receiver for tests: `POST /v1/traces` with the exporter's JSON body,
 * every span decoded (ids as hex, attributes as plain values). It checks nothing itself; tests
 * assert on `spans`, `requests` and `rejected` (a request that was not OTLP JSON).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as the exporter sent it. */
export interface WireSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
  /** Span links (`traceId`/`spanId` as hex). */
  links: { traceId: string; spanId: string }[];
}

/** A started receiver. */
export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`: the value of `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  url: string;
  spans: WireSpan[];
  /** Requests received (any path). */
  requests(): number;
  /** Requests that were not `POST /v1/traces` with a JSON body. */
  rejected(): number;
  close(): Promise<void>;
}

/** OTLP JSON ids are hex strings; accept base64 too (the protobuf JSON mapping). */
function hexId(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  return /^[0-9a-f]+$/.test(value) ? value : Buffer.from(value, 'base64').toString('hex');
}

function attributeValue(value: Record<string, unknown>): unknown {
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return value.doubleValue;
  return value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a receiver on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: WireSpan[] = [];
  let requests = 0;
  let rejected = 0;
  const server: Server = createServer((request, response) => {
    requests++;
    void (async () => {
      const body = await readBody(request);
      if (
        request.method !== 'POST' ||
        request.url !== '/v1/traces' ||
        !String(request.headers['content-type']).includes('application/json')
      ) {
        rejected++;
        response.writeHead(404).end();
        return;
      }
      const document = JSON.parse(body) as {
        resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
      };
      for (const resource of document.resourceSpans) {
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            const attributes: Record<string, unknown> = {};
            for (const entry of (span.attributes ?? []) as {
              key: string;
              value: Record<string, unknown>;
            }[]) {
              attributes[entry.key] = attributeValue(entry.value);
            }
            const links = ((span.links ?? []) as { traceId: unknown; spanId: unknown }[]).map(
              (link) => ({ traceId: hexId(link.traceId), spanId: hexId(link.spanId) }),
            );
            const parent = hexId(span.parentSpanId);
            spans.push({
              traceId: hexId(span.traceId),
              spanId: hexId(span.spanId),
              ...(parent === '' ? {} : { parentSpanId: parent }),
              name: String(span.name),
              kind: Number(span.kind),
              attributes,
              status: span.status as { code?: number },
              links,
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests: () => requests,
    rejected: () => rejected,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
