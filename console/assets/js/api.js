// The auditor API, called with the token in the Authorization header only.
// The token lives in this tab's sessionStorage under one key and nowhere
// else; no cookie is ever sent (credentials: 'omit').

const KEY = 'quill.auditor.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t.trim());
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

// claims decodes the token's payload for display only: the server decides
// what the token may see.
export function claims() {
  const t = token();
  const parts = t.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
  } catch {
    return null;
  }
}

// ApiError is an answer other than 200, with the problem's code and texts.
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || ('HTTP ' + status));
    this.status = status;
    this.code = problem.code || '';
    this.detail = problem.detail || '';
    this.requestID = problem.request_id || '';
  }
}

function headers() {
  const h = { Accept: 'application/json' };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// raw sends GET path and returns the response, or throws ApiError.
export async function raw(path, signal) {
  const res = await fetch(path, { headers: headers(), credentials: 'omit', cache: 'no-store', signal });
  if (!res.ok) {
    let p = {};
    try { p = await res.json(); } catch { /* not a problem document */ }
    throw new ApiError(res.status, p);
  }
  return res;
}

// get sends GET path (with query params) and returns the decoded JSON.
export async function get(path, params, signal) {
  const res = await raw(path + query(params), signal);
  return res.json();
}

export function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// devToken asks the server for a dev auditor token (dev mode only).
export async function devToken() {
  const res = await fetch('/console/dev-token', { method: 'POST', credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!res.ok) throw new ApiError(res.status, {});
  return (await res.json()).token;
}

export async function consoleConfig() {
  const res = await fetch('/console/config.json', { credentials: 'omit', cache: 'no-store' });
  return res.ok ? res.json() : { dev_sign_in: false };
}
