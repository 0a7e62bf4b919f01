import { describe, expect, it } from 'vitest';

import { DEFAULT_API_SERVER_DRAFT, apiServerRequest, exampleCommand } from './apiServer';

describe('apiServerRequest', () => {
  it('serves on loopback by default, with no key', () => {
    expect(apiServerRequest(DEFAULT_API_SERVER_DRAFT)).toEqual({
      ok: true,
      request: { port: 8080, apiKey: null, allowNetwork: false },
    });
  });

  it('refuses ports that are not a whole number in the unprivileged range', () => {
    for (const port of ['', '80', '65536', '8080.5', 'abc', '-1', ' 1e4 ']) {
      const check = apiServerRequest({ ...DEFAULT_API_SERVER_DRAFT, port });
      expect(check.ok, port).toBe(false);
      if (!check.ok) expect(check.field).toBe('port');
    }
    expect(apiServerRequest({ ...DEFAULT_API_SERVER_DRAFT, port: ' 9000 ' })).toMatchObject({ ok: true, request: { port: 9000 } });
  });

  it('opens to the network only with a key, trimmed', () => {
    const without = apiServerRequest({ port: '8080', apiKey: '   ', allowNetwork: true });
    expect(without).toMatchObject({ ok: false, field: 'apiKey' });
    expect(apiServerRequest({ port: '8080', apiKey: ' s3cret ', allowNetwork: true })).toEqual({
      ok: true,
      request: { port: 8080, apiKey: 's3cret', allowNetwork: true },
    });
  });

  it('shows how to call it, with the key header only when one is needed', () => {
    expect(exampleCommand('http://127.0.0.1:8080/v1', false)).toBe('curl http://127.0.0.1:8080/v1/models');
    expect(exampleCommand('http://127.0.0.1:8080/v1', true)).toBe('curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/v1/models');
  });
});
