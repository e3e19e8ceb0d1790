import { Codes, InputError } from './errors';

declare const validatedFrob: unique symbol;
/** A frob that passed `parseFrob` (or came from `auth.getFrob`): only those may be exchanged. */
export type ValidatedFrob = string & { readonly [validatedFrob]: true };

/** ipernity's frobs look like `123456789-0ad5e2a8`; allow some room around that shape. */
const FROB_PATTERN = /^[0-9A-Za-z][0-9A-Za-z_-]{3,127}$/;

/** True when a string has the shape of a frob. */
export function isFrob(value: string): value is ValidatedFrob {
  return FROB_PATTERN.test(value);
}

/**
 * Reads the `frob` parameter of a callback strictly: missing, repeated or
 * malformed are distinct errors.
 */
export function parseFrob(query: Readonly<Record<string, unknown>>): ValidatedFrob {
  const value = Object.prototype.hasOwnProperty.call(query, 'frob') ? query.frob : undefined;
  if (value === undefined || value === '') {
    throw new InputError(Codes.FROB_MISSING, 'the callback carries no frob', 'frob');
  }
  if (Array.isArray(value)) {
    throw new InputError(Codes.FROB_REPEATED, 'the callback carries more than one frob', 'frob');
  }
  if (typeof value !== 'string' || !isFrob(value)) {
    throw new InputError(Codes.FROB_MALFORMED, 'the frob does not have the expected shape', 'frob');
  }
  return value;
}
