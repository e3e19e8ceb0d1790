import type { ErrorRequestHandler, Request } from 'express';
import { seeOther } from '../web/see-other';
import { ConnectionError } from './errors';

/**
 * True when the request asks for JSON rather than a page: `Accept` names
 * JSON before (or without) HTML, or a script's `fetch` (`Sec-Fetch-Mode`
 * `cors` or `same-origin`) that does not ask for HTML.
 */
export function wantsJson(req: Request): boolean {
  const accept = req.headers.accept ?? '';
  const html = accept.indexOf('text/html');
  const json = accept.indexOf('json');
  if (json !== -1 && (html === -1 || json < html)) return true;
  const mode = req.headers['sec-fetch-mode'];
  return (mode === 'cors' || mode === 'same-origin') && html === -1;
}

/**
 * Turns the errors of the visitor-bound client into answers: a page request
 * is sent (303) to the warning page, asking for what is missing and coming
 * back; a JSON request (`wantsJson`, or a route that answers JSON) gets 401
 * or 403 with the code and the link, never a redirect, which a single-page
 * application could not follow. Other errors go on to the next handler.
 */
export function answerConnectionErrors(): ErrorRequestHandler {
  return function answerConnectionErrors(error, req, res, next) {
    if (!(error instanceof ConnectionError) || res.headersSent) {
      next(error);
      return;
    }
    res.set('Cache-Control', 'no-store');
    if (res.locals.json || wantsJson(req)) {
      res.status(error.status).json({ error: { code: error.code, status: error.status, message: error.message, ...error.details() } });
      return;
    }
    seeOther(res, error.link);
  };
}
