/** Longest `return_to` kept; longer ones fall back to the home page. */
const MAX_LENGTH = 2048;

/**
 * Keeps a `return_to` only when it is a path on this site: it starts with a
 * single `/`, has no backslash, no control character and no scheme.
 * Everything else (`//evil.example`, `/\evil.example`, `https://…`) gives `/`.
 */
export function safeReturnTo(value: unknown, fallback = '/'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) return fallback;
  if (!value.startsWith('/') || value.startsWith('//')) return fallback;
  // backslashes are read as slashes by browsers; control characters and spaces can hide a host
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (/[\\\u0000-\u0020\u007f-\u009f]/.test(value)) return fallback;
  let parsed: URL;
  try {
    parsed = new URL(value, 'http://site.invalid');
  } catch {
    return fallback;
  }
  if (parsed.origin !== 'http://site.invalid') return fallback;
  return parsed.pathname + parsed.search + parsed.hash;
}
