// Settings → Local API server: the form's checks and the request the shell gets
// (src-tauri/src/api_server.rs). The shell refuses the same things; checking here names the
// field before anything starts.
import type { ApiServerRequest } from './types';

export interface ApiServerDraft {
  port: string;
  apiKey: string;
  allowNetwork: boolean;
}

export const DEFAULT_API_SERVER_DRAFT: ApiServerDraft = { port: '8080', apiKey: '', allowNetwork: false };

export type ApiServerCheck = { ok: true; request: ApiServerRequest } | { ok: false; field: 'port' | 'apiKey'; message: string };

/** The request for `draft`, or the first field that is wrong and why. */
export function apiServerRequest(draft: ApiServerDraft): ApiServerCheck {
  const text = draft.port.trim();
  const port = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(port) || port < 1024 || port > 65535) {
    return { ok: false, field: 'port', message: 'A port from 1024 to 65535' };
  }
  const apiKey = draft.apiKey.trim();
  if (draft.allowNetwork && !apiKey) {
    return { ok: false, field: 'apiKey', message: 'Other computers may use the server only with an API key' };
  }
  return { ok: true, request: { port, apiKey: apiKey || null, allowNetwork: draft.allowNetwork } };
}

/** A curl command that lists the served model: what to try first. */
export function exampleCommand(baseUrl: string, keyRequired: boolean): string {
  const auth = keyRequired ? ' -H "Authorization: Bearer $KEY"' : '';
  return `curl${auth} ${baseUrl}/models`;
}
