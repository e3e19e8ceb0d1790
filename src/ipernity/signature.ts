import { createHash } from 'node:crypto';

/** Parameter values as they are signed and sent: raw strings, never URL-encoded. */
export type Params = Readonly<Record<string, string>>;

/**
 * The string ipernity signs: every parameter but `api_sig`, sorted by name,
 * as name then value, then the method name (API calls only), then the secret.
 */
export function signatureBase(params: Params, secret: string, method?: string): string {
  let base = '';
  for (const name of Object.keys(params).sort()) {
    if (name === 'api_sig') continue;
    base += name + params[name];
  }
  return base + (method ?? '') + secret;
}

/** `api_sig` for an API call (`method` given) or an authorization link (no method). */
export function sign(params: Params, secret: string, method?: string): string {
  return createHash('md5').update(signatureBase(params, secret, method), 'utf8').digest('hex');
}
