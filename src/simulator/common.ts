import type { Response } from 'express';
import type { Eta } from 'eta';

/** ipernity's error messages for the codes the simulator answers. */
export const MESSAGES: Record<number, string> = {
  1: 'Required parameter missing',
  2: 'Invalid frob',
  100: 'API key missing',
  101: 'Invalid API key',
  102: 'Bad format',
  103: 'Method not found',
  104: 'Signature missing',
  105: 'Invalid signature',
  106: 'Token missing',
  107: 'Invalid token',
  108: 'Account closed or suspended',
  110: 'Insufficient permissions',
  112: 'Application quota reached',
  113: 'Too many requests from this address',
  120: 'POST required',
};

/** The simulator's answer for an ipernity error code. */
export class ApiFailure extends Error {
  constructor(
    readonly apiCode: number,
    message?: string,
  ) {
    super(message ?? MESSAGES[apiCode] ?? 'Error');
  }
}

/** ipernity's JSON answer for a success: the method's body plus `api.status` ok. */
export function sendOk(res: Response, body: Record<string, unknown>): void {
  res.json({ ...body, api: { status: 'ok', at: Date.now() } });
}

/** ipernity's JSON answer for an error: HTTP 200, `api.status` error, the code as a string. */
export function sendFailure(res: Response, failure: ApiFailure): void {
  res.json({ api: { status: 'error', code: String(failure.apiCode), message: failure.message } });
}

/** Single-valued parameters into `into`; the names of repeated ones into `repeated`. */
export function flatten(source: Record<string, unknown>, into: Record<string, string>, repeated: Set<string>): void {
  for (const [name, value] of Object.entries(source)) {
    if (typeof value === 'string') into[name] = value;
    else repeated.add(name);
  }
}

/** Sends a simulator page, never cached. */
export function sendPage(eta: Eta, res: Response, status: number, template: string, data: Record<string, unknown>): void {
  res.status(status).type('html').set('Cache-Control', 'no-store').send(eta.render(template, data));
}
