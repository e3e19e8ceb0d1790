import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { Codes, pageOf, statusOf, type ErrorCode } from '../errors';
import { DEFAULT_RETRY_AFTER_SECONDS, IpernityApiError, IpernityError, IpernityQuotaError, IpernityRateLimitError, InputError } from '../ipernity';
import { CsrfError, type Csrf } from '../security/csrf';
import { WebError } from './errors';
import type { Renderer } from './render';
import { languageOf, type MessageKey } from './i18n';
import { requestLog } from './logging';
import { drainBody } from './drain';

/** How an error reaches the visitor: status, the stable code, the page's message key. */
interface Answer {
  status: number;
  code: string;
  page: string;
  values?: Record<string, string | number>;
  retry?: boolean;
  allow?: string[];
  /** Seconds to wait before trying again (`Retry-After`). */
  retryAfter?: number;
  /** Said in a JSON answer beside the code and status (e.g. the parameter a request got wrong). */
  details?: Record<string, unknown>;
}

/** The answer for a code, as the registry (src/errors.ts) gives it. */
function registered(code: ErrorCode, extra: Partial<Answer> = {}): Answer {
  return { status: statusOf(code), code, page: pageOf(code), ...extra };
}

function answerFor(error: unknown): Answer {
  if (error instanceof InputError) return registered(error.code, { values: { parameter: error.parameter } });
  if (error instanceof IpernityApiError) {
    // codes 1 and 2 of auth.getToken answer for the frob the visitor's browser brought back (spent,
    // expired or never issued): ipernity worked, the request did not, so it is a 400, not an outage
    // (OAuth mode: the access-token exchange's 107, a request token spent, expired or never authorized)
    if ((error.method === 'auth.getToken' && (error.apiCode === 1 || error.apiCode === 2)) || (error.method === 'oauth.access' && error.apiCode === 107)) {
      return registered(error.code, { status: 400, page: 'FROB_USED', retry: true });
    }
    // ipernity gives 113 no delay, and 112 none either: the client's default stands in
    const retryAfter = error instanceof IpernityRateLimitError ? error.retryAfterSeconds : error instanceof IpernityQuotaError ? DEFAULT_RETRY_AFTER_SECONDS : undefined;
    return registered(error.code, { values: { apiCode: error.apiCode }, retry: true, retryAfter });
  }
  if (error instanceof IpernityError) return registered(error.code, { retry: true });
  if (error instanceof WebError) return registered(error.code, { allow: error.extra.allow, details: error.extra.details && { message: error.message, ...error.extra.details } });
  if (error instanceof CsrfError) return registered(error.code);
  const status = (error as { status?: unknown }).status;
  const type = (error as { type?: unknown }).type;
  if (type === 'entity.too.large' || type === 'parameters.too.many') return registered(Codes.PAYLOAD_TOO_LARGE);
  // a file the static folder does not have
  if (status === 404) return registered(Codes.NOT_FOUND);
  if (error instanceof URIError || (typeof status === 'number' && status >= 400 && status < 500)) return registered(Codes.BAD_REQUEST);
  return registered(Codes.INTERNAL);
}

export interface ErrorHandlerOptions {
  render: Renderer;
  csrf: Csrf;
  logger: Logger;
  appName: string;
}

/** Renders what went wrong: a page in the visitor's language (or JSON for JSON routes), never a stack trace. */
export function createErrorHandler(options: ErrorHandlerOptions): ErrorRequestHandler {
  return function errorHandler(error: unknown, req: Request, res: Response, _next) {
    const log = requestLog(req, options.logger);
    if (res.headersSent) {
      // too late for a page: e.g. express-session failing to save after the response was written
      log.warn({ event: 'late_error', code: (error as { code?: string })?.code, err: error }, 'error after the response had started');
      if (!res.writableEnded) res.destroy();
      return;
    }
    // after the rest of a body it refused unread, so that closing the connection does not reset it under the answer
    if (!req.complete) {
      void drainBody(req).then(() => {
        if (!res.headersSent && !res.destroyed) answerError(error, req, res);
      });
      return;
    }
    answerError(error, req, res);
  };

  function answerError(error: unknown, req: Request, res: Response): void {
    const log = requestLog(req, options.logger);
    const answer = answerFor(error);
    if (answer.status >= 500) {
      // 500 is a defect of ours; the other 5xx are outages of ipernity or the store, reported as warnings
      const level = answer.status === 500 ? 'error' : 'warn';
      log[level]({ event: 'request_failed', code: answer.code, err: error }, 'request failed');
    }
    if (answer.allow) res.set('Allow', answer.allow.join(', '));
    if (answer.retryAfter !== undefined) res.set('Retry-After', String(answer.retryAfter));
    res.set('Cache-Control', 'no-store');
    if (res.locals.json) {
      res.status(answer.status).json({ error: { code: answer.code, status: answer.status, ...answer.details } });
      return;
    }
    const { t } = languageOf(req);
    const values = { app: options.appName, ...answer.values };
    const retry = answer.retry ? (res.locals.retry as { params: [string, string][]; returnTo: string } | undefined) : undefined;
    try {
      options.render(req, res, answer.status, 'error', {
        title: t(`error.${answer.page}.title` as MessageKey),
        message: t(`error.${answer.page}.message` as MessageKey, values),
        code: answer.code,
        retry,
        csrfToken: retry ? options.csrf.token(req, res) : undefined,
      });
    } catch (renderError) {
      log.error({ event: 'render_failed', err: renderError }, 'error page failed to render');
      res.status(answer.status).type('text').send(`${answer.status} ${answer.code}\n`);
    }
  }
}

/** The 404 for every path no router answered. */
export const notFound: RequestHandler = function notFound(_req, _res, next) {
  next(new WebError(Codes.NOT_FOUND, 'no such page'));
};
