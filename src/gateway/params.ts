import { Codes } from '../errors';
import type { MethodSpec } from '../ipernity';
import { WebError } from '../web/errors';

/** What only the server may put in a call: the key, the signature, the token, the frob, the answer's format. */
export const RESERVED_PARAMETERS = new Set(['api_key', 'api_sig', 'auth_token', 'frob', 'format']);
/** The form field and fields that carry the CSRF token, never forwarded. */
const NOT_FORWARDED = new Set(['_csrf']);
/** ipernity's parameter names: lower case, digits and underscores. */
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** Longest value forwarded; ipernity's longest texts (descriptions) fit. */
const MAX_VALUE = 4096;

function refuse(parameter: string, message: string): never {
  throw new WebError(Codes.API_PARAMETER_INVALID, message, { details: { parameter } });
}

/**
 * The parameters of a gateway call, checked before anything is sent: from
 * the query (GET) or the body (POST: a form or a JSON object of strings and
 * numbers). Refused, naming the parameter: a reserved one, a repeated one,
 * one that is not a string or a number, one the method does not take (when
 * ipernity's list knows its parameters), a required one missing.
 */
export function gatewayParams(method: string, spec: MethodSpec, source: unknown): Record<string, string> {
  if (source === null || typeof source !== 'object' || Array.isArray(source)) refuse('', 'the parameters must be an object of names and values');
  const known = new Set([...spec.required, ...spec.optional]);
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(source as Record<string, unknown>)) {
    if (NOT_FORWARDED.has(name)) continue;
    if (!NAME.test(name)) refuse(name.slice(0, 64), 'not a parameter name: lower-case letters, digits and underscores');
    if (RESERVED_PARAMETERS.has(name)) refuse(name, `${name} is added by the server and can never be given`);
    if (Array.isArray(value)) refuse(name, `${name} is given more than once`);
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
    else refuse(name, `${name} must be a string or a number`);
    if (text.length > MAX_VALUE) refuse(name, `${name} is longer than ${MAX_VALUE} characters`);
    if (known.size > 0 && !known.has(name)) refuse(name, `ipernity ${method} takes no parameter ${name}`);
    params[name] = text;
  }
  for (const name of spec.required) {
    if (RESERVED_PARAMETERS.has(name) || name === 'file') continue;
    if (!params[name]) refuse(name, `ipernity ${method} requires ${name}`);
  }
  return params;
}
