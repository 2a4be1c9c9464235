/**
 * The page's calls to /api/v1: JSON in and out, the session's CSRF token on every change, and one
 * place that notices the session has ended (401) and sends the user back to sign in.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

let csrfToken = "";
let onSignedOut: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith("/session") && !path.startsWith("/setup")) onSignedOut();
    throw new ApiError(res.status, String(parsed.error ?? `HTTP ${res.status}`), parsed);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string): Promise<T> => call<T>("GET", path),
  post: <T>(path: string, body: unknown = {}): Promise<T> => call<T>("POST", path, body),
  put: <T>(path: string, body: unknown = {}): Promise<T> => call<T>("PUT", path, body),
  delete: <T>(path: string): Promise<T> => call<T>("DELETE", path),
};

/** A streamed answer of one JSON object a line (test this domain), each handed over as it comes. */
export async function stream<T>(path: string, body: unknown, onItem: (item: T) => void): Promise<void> {
  const res = await fetch(`/api/v1${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!res.ok || !res.body) {
    const parsed = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status === 401) onSignedOut();
    throw new ApiError(res.status, String(parsed.error ?? `HTTP ${res.status}`), parsed);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl = buffered.indexOf("\n");
    while (nl !== -1) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onItem(JSON.parse(line) as T);
      nl = buffered.indexOf("\n");
    }
  }
}
