import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseNodeList, readNodeList } from './node-list.js';

describe('node lists', () => {
  it('drops comments and blank lines', () => {
    expect(parseNodeList('# fleet\nweb01\n\n  web02  # second\r\n@db\n#\n')).toEqual([
      'web01',
      'web02',
      '@db',
    ]);
  });

  it('reads stdin for "-"', async () => {
    const stdin = Readable.from([Buffer.from('web01\nweb'), Buffer.from('02\n')]);
    await expect(readNodeList('-', { stdin })).resolves.toEqual(['web01', 'web02']);
  });

  it('reports an unreadable file as INVALID_ARGUMENT', async () => {
    await expect(readNodeList('/nonexistent/rune-nodes.txt')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { path: '/nonexistent/rune-nodes.txt' },
    });
  });
});
