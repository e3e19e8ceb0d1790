import { Codes } from '../errors';
import type { NextFunction, Request, Response } from 'express';
import {WebError } from './errors';

/** Longest request target accepted: the flow's own links are far shorter. */
export const MAX_URL_LENGTH = 4096;

/** Answers 414 to an address longer than `MAX_URL_LENGTH`. */
export function limitUrlLength(req: Request, _res: Response, next: NextFunction): void {
  next(req.url.length > MAX_URL_LENGTH ? new WebError(Codes.URI_TOO_LONG, 'the address is too long') : undefined);
}
