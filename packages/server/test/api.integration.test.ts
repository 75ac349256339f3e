import { type RunEvent, validateRunEventStream, validateRunResultDocument } from '@rune/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestHome,
  startTestServer,
  type TestHome,
  type TestServer,
  waitForRun,
} from './harness.js';

let home: TestHome;
let t: TestServer;
beforeAll(async () => {
  home = createTestHome();
  t = await startTestServer(home);
});
afterAll(async () => {
  await t?.close();
  home?.remove();
});

describe('runs', () => {
  it('POST /v1/runs runs noop on localhost: 202, then a valid run document', async () => {
    const response = await t.request('/v1/runs', {
      json: { action: 'noop', targets: ['localhost'], params: { message: 'hi' } },
    });
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as {
      id: string;
      trace_id: string;
      links: Record<string, string>;
    };
    expect(accepted.links.self).toBe(`/v1/runs/${accepted.id}`);
    const document = await waitForRun(t, accepted.id);
    expect(validateRunResultDocument(document).ok).toBe(true);
    expect(document).toMatchObject({
      status: 'succeeded',
      principal: 'token:ops',
      source: 'api',
      exit_code: 0,
    });
  });
});
