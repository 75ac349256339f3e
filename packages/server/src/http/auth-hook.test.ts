import { describe, expect, it } from 'vitest';
import { credentialInQuery } from './auth-hook.js';

describe('credentialInQuery', () => {
  it('finds credential names and token-shaped values anywhere in a query string', () => {
    const token = `rune_0123456789abcdef_${'A'.repeat(43)}`;
    expect(credentialInQuery('/v1/runs?token=x')).toBe('token');
    expect(credentialInQuery('/v1/runs?limit=2&Access_Token=x')).toBe('Access_Token');
    expect(credentialInQuery(`/v1/runs?q=${token}`)).toBe('q');
    expect(credentialInQuery(`/v1/runs?${encodeURIComponent(token)}`)).toBeDefined();
    expect(credentialInQuery('/v1/runs?limit=2&status=running')).toBeUndefined();
    expect(credentialInQuery('/v1/runs')).toBeUndefined();
  });
});
