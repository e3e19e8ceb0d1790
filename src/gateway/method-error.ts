import type { Response } from 'express';
import { Codes, statusOf } from '../errors';
import type { IpernityApiError } from '../ipernity';

/**
 * A method's own refusal (ipernity's codes below 100: no such document, not
 * yours, no file…) answered as ipernity gave it, with the gateway's status
 * for it: the visitor's request, not an outage.
 */
export function sendMethodError(res: Response, error: IpernityApiError): void {
  res.status(statusOf(Codes.IPERNITY_METHOD_ERROR)).json({ api: { status: 'error', code: String(error.apiCode), message: error.apiMessage } });
}
