import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { Codes } from '../errors';
import { findMethod, IpernityApiError, type MethodName, type MethodSpec } from '../ipernity';
import { ConnectionError } from '../connection/errors';
import type { VisitorClient } from '../connection/visitor-client';
import type { Csrf } from '../security/csrf';
import { WebError } from '../web/errors';
import { flowEvent } from '../web/logging';
import type { Metrics } from '../web/metrics';
import type { ApiCache } from './cache';
import { sendMethodError } from './method-error';
import { gatewayParams } from './params';
import { uploadThrough } from './upload';

/** Where the gateway answers: `/api/ipernity/<method>`. */
export const GATEWAY_PATH = '/api/ipernity';

export interface GatewayOptions {
  /** The methods it forwards (IPERNITY_API_METHODS); each is in ipernity's list and none is `auth.*`. */
  methods: readonly string[];
  ipernity: (req: Request) => VisitorClient;
  /** Loads the visitor's session (the stack's `optional`). */
  session: RequestHandler;
  /** The session id the browser's cookie carries: the cache's and the rate limit's visitor. */
  sessionIdOf: (req: Request) => string | undefined;
  csrf: Csrf;
  /** Per visitor (API_RATE_LIMIT_PER_MINUTE); none when off. */
  rateLimit?: RequestHandler;
  /** Reading answers per visitor (API_CACHE_SECONDS); none when off. */
  cache?: ApiCache;
  logger: Logger;
  metrics?: Metrics;
  /** UPLOAD_MAX_BYTES: the largest file `upload.file` takes through the gateway. */
  uploadMaxBytes: number;
}

/** A method that only reads: ipernity allows it by GET and it needs no more than read. Its answers may be kept. */
function reads(spec: MethodSpec): boolean {
  return !spec.postOnly && (spec.permission === null || spec.permission.level === 'read');
}

/** The cache's key for a call: the method and its parameters in a stable order. */
function cacheKey(method: string, params: Record<string, string>): string {
  return JSON.stringify([method, ...Object.keys(params).sort().map((name) => [name, params[name]])]);
}

/** How a gateway call ended, for the log and the metrics: never its parameters or its answer. */
function outcomeOf(error: unknown): string {
  if (error instanceof ConnectionError) return error.code.toLowerCase();
  if (error instanceof IpernityApiError) return error.apiCode < 100 ? Codes.IPERNITY_METHOD_ERROR.toLowerCase() : `ipernity_${error.apiCode}`;
  if (error instanceof WebError) return error.code.toLowerCase();
  return (error as { code?: string })?.code?.toLowerCase() ?? 'error';
}

/**
 * The API gateway: the site's pages call ipernity for the connected visitor
 * at `/api/ipernity/<method>`, and the token stays on the server. Only the
 * listed methods are forwarded (404 `METHOD_NOT_ALLOWED_HERE` otherwise,
 * with nothing sent); `GET` for the methods ipernity allows by GET, `POST`
 * for every listed method, under CSRF protection. The parameters are checked
 * against ipernity's list first (`gatewayParams`). ipernity's answer is
 * passed on as it came when its status is ok; a method's own error (a code
 * below 100) is a 400 with ipernity's body; the rest are the server's JSON
 * errors. Nothing is ever cached by the browser.
 */
export function createGatewayRouter(options: GatewayOptions): Router {
  const allowed = new Map<string, MethodSpec>();
  for (const name of options.methods) allowed.set(name, findMethod(name) as MethodSpec);
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 64 });
  const json = express.json({ limit: '8kb', strict: true });
  const limit: RequestHandler = options.rateLimit ?? ((_req, _res, next) => next());
  const router = express.Router();

  /** Finds the method; answers JSON from here on, and never lets the browser keep an answer. */
  function resolve(req: Request, res: Response, next: NextFunction): void {
    res.locals.json = true;
    res.set('Cache-Control', 'no-store');
    const name = String(req.params.method);
    const spec = allowed.get(name);
    if (!spec) {
      next(new WebError(Codes.METHOD_NOT_ALLOWED_HERE, 'this method is not forwarded here', { details: { method: name.slice(0, 100) } }));
      return;
    }
    const allow = spec.postOnly ? ['POST'] : ['GET', 'HEAD', 'POST'];
    if (!allow.includes(req.method)) {
      next(new WebError(Codes.METHOD_NOT_ALLOWED, 'method not allowed', { allow }));
      return;
    }
    res.locals.gateway = { name, spec };
    next();
  }

  /** A POST's parameters are in its body only. */
  function body(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== 'POST') {
      next();
      return;
    }
    if (req.url.includes('?')) {
      next(new WebError(Codes.API_PARAMETER_INVALID, 'a POST takes its parameters in its body, not in the address', { details: { parameter: '' } }));
      return;
    }
    const { name } = res.locals.gateway as { name: string };
    if (req.is('multipart/form-data')) {
      if (name !== 'upload.file') {
        next(new WebError(Codes.API_PARAMETER_INVALID, 'a multipart body is for uploads (upload.file) only', { details: { parameter: '' } }));
        return;
      }
      // streamed by the upload step, which checks CSRF itself once it has read the fields before the file
      res.locals.multipart = true;
      next();
      return;
    }
    if (name === 'upload.file') {
      next(new WebError(Codes.API_PARAMETER_INVALID, 'upload.file takes a multipart/form-data body with a "file" part', { details: { parameter: 'file' } }));
      return;
    }
    const parse = req.is('application/json') ? json : form;
    parse(req, res, next);
  }

  async function forward(req: Request, res: Response): Promise<void> {
    const { name, spec } = res.locals.gateway as { name: MethodName; spec: MethodSpec };
    const params = gatewayParams(name, spec, req.method === 'POST' ? (req.body ?? {}) : req.query);
    // the session and the account it is connected to: a browser connected to another account never shares answers
    const sid = options.sessionIdOf(req);
    const userId = req.session?.connection?.user.userId;
    const visitor = sid && userId ? `${sid}.${userId}` : undefined;
    const cache = options.cache && visitor ? options.cache : undefined;
    const key = cacheKey(name, params);
    // one line per call, the request's own: the method, the outcome and ipernity's time, never a value
    const done = (outcome: string, upstreamMs?: number): void => {
      options.metrics?.gatewayCalls.inc({ method: name, outcome });
      flowEvent(req, options.logger, 'gateway_call', { method: name, outcome, ...(upstreamMs === undefined ? {} : { upstreamMs }) }, 'gateway call');
    };
    let asked: number | undefined;
    const upstreamMs = (): number | undefined => (asked === undefined ? undefined : Math.round((performance.now() - asked) * 100) / 100);
    const client = options.ipernity(req);
    try {
      let kept: string | undefined;
      if (cache && reads(spec)) {
        // the connection before the cache: a kept answer is never given to a visitor who disconnected,
        // was revoked, or no longer has the permission (`call` checks the same on its own)
        await client.require(name);
        kept = await cache.get(visitor as string, key);
      }
      if (kept !== undefined) {
        done('cached');
        res.status(200).type('json').send(kept);
        return;
      }
      asked = performance.now();
      const answer = await client.call(name, params);
      const took = upstreamMs();
      const text = JSON.stringify(answer);
      if (cache && reads(spec)) await cache.set(visitor as string, key, text);
      else if (cache) await cache.drop(visitor as string);
      done('ok', took);
      res.status(200).type('json').send(text);
    } catch (error) {
      done(outcomeOf(error), upstreamMs());
      if (error instanceof IpernityApiError && error.apiCode < 100) {
        sendMethodError(res, error);
        return;
      }
      throw error;
    }
  }

  if (allowed.has('doc.getMedias')) {
    // a photo through the server: the visitor's token finds its address, whose secret never reaches the browser
    router.get(`${GATEWAY_PATH}/media/:docId/:label`, function mediaAnswersJson(_req, res, next) {
      res.locals.json = true;
      next();
    }, options.session, limit, async function media(req: Request, res: Response) {
      const docId = String(req.params.docId);
      const label = String(req.params.label);
      if (!/^[0-9]{1,20}$/.test(docId) || !/^[a-z0-9]{1,20}$/.test(label)) throw new WebError(Codes.NOT_FOUND, 'no such photo');
      const found = await options.ipernity(req).media(docId, label);
      if (!found) throw new WebError(Codes.NOT_FOUND, 'no such photo, or no such size');
      options.metrics?.gatewayCalls.inc({ method: 'media', outcome: 'ok' });
      res.status(200).set({
        'Content-Type': found.contentType,
        // the visitor's own photo, private or not: their browser may keep it, no shared cache
        'Cache-Control': 'private, max-age=3600',
        'Content-Disposition': 'inline',
        'X-Content-Type-Options': 'nosniff',
        ...(found.contentLength !== undefined ? { 'Content-Length': String(found.contentLength) } : {}),
      });
      await pipeline(found.body, res).catch(() => {
        // the visitor went away, or the media host stopped: both sides are closed, nothing to answer
        found.body.destroy();
      });
    });
  }

  const upload = uploadThrough({ maxBytes: options.uploadMaxBytes, ipernity: options.ipernity, csrf: options.csrf, metrics: options.metrics });
  router.all(`${GATEWAY_PATH}/:method`, resolve, body, function checkCsrf(req, res, next) {
    if (req.method === 'POST' && !res.locals.multipart) options.csrf.verify(req, res, next);
    else next();
  }, options.session, limit, function forwardOrUpload(req: Request, res: Response) {
    return res.locals.multipart ? upload(req, res) : forward(req, res);
  });
  return router;
}
