/** Longest `return_to` kept; longer ones fall back to the home page. */
const MAX_LENGTH = 2048;

/** The base a `return_to` is resolved against: only its path, query and fragment are ever kept. */
const BASE = 'http://site.invalid';

/**
 * True for a path that a browser reads as this site's: a single leading `/`,
 * no second `/` or `\` after it (`//host` and `/\host` name another host), no
 * control character or space (which can hide a host) and so no scheme.
 */
function isSitePath(value: string): boolean {
  if (value.length === 0 || value.length > MAX_LENGTH) return false;
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return false;
  // backslashes are read as slashes by browsers; control characters and spaces can hide a host
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  return !/[\\\u0000-\u0020\u007f-\u009f]/.test(value);
}

/**
 * Keeps a `return_to` only when it is a path on this site, and answers it
 * normalised (dot segments resolved, unsafe characters percent-encoded).
 * The check runs on what is returned, not only on what was given:
 * `/.//evil.example` and `/%2e%2e//evil.example` normalise to
 * `//evil.example`, which a browser reads as another host, so they give the
 * fallback (`/`). Applying it to its own answer changes nothing.
 */
export function safeReturnTo(value: unknown, fallback = '/'): string {
  if (typeof value !== 'string' || !isSitePath(value)) return fallback;
  let parsed: URL;
  try {
    parsed = new URL(value, BASE);
  } catch {
    return fallback;
  }
  if (parsed.origin !== BASE) return fallback;
  const normalised = parsed.pathname + parsed.search + parsed.hash;
  return isSitePath(normalised) ? normalised : fallback;
}
