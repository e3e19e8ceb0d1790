import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';

/** Query parameters whose values never reach a log line. */
const SECRET_PARAMS = new Set(['frob', 'api_sig', 'auth_token', 'token', 'api_key', '_csrf']);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fields pino redacts in any logged object, as a second line of defence:
 * request lines carry no headers at all (see the serializers below).
 */
export const REDACT_PATHS = ['token', 'frob', 'secret', 'apiSecret', 'sealedToken', '*.token', '*.frob', '*.secret', '*.apiSecret', '*.sealedToken'];

/** The application logger: JSON lines, redacting secrets by path. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ipernity-connect' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // asynchronous writes, batched only while one is in flight: a line reaches `docker logs` at once,
    // and a process killed hard loses at most the write under way
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A URL for the logs: the path, with the values of secret parameters replaced. */
export function loggableUrl(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const params = new URLSearchParams(url.slice(mark + 1));
  for (const name of new Set(params.keys())) {
    if (SECRET_PARAMS.has(name)) params.set(name, '[redacted]');
  }
  return `${url.slice(0, mark)}?${params.toString()}`;
}

/**
 * One JSON line per request, with a request id (an incoming `X-Request-Id`
 * when it is sane, else a new one, echoed back). Only method, path, status
 * and timing are logged: no headers, so no cookie or Location can leak.
 */
export function createHttpLogger(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    quietReqLogger: true,
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (req: IncomingMessage) => req.url === '/healthz' },
    customLogLevel(_req: IncomingMessage, res: ServerResponse, error?: Error) {
      // 500 is our own failure; 502/503/504 say ipernity or the store is away, which the flow reports as a warning
      if (error || res.statusCode === 500) return 'error';
      if (res.statusCode >= 400) return 'warn';
      return 'info';
    },
    // a flow event noted during the request rides on the request's own line: one line per request
    customSuccessObject: (_req: IncomingMessage, res: ServerResponse, value: Record<string, unknown>) => withFlowEvent(res, value),
    customErrorObject: (_req: IncomingMessage, res: ServerResponse, _error: Error, value: Record<string, unknown>) => withFlowEvent(res, value),
    customSuccessMessage: (_req: IncomingMessage, res: ServerResponse) => flowEventOf(res)?.message ?? 'request completed',
    customErrorMessage: (_req: IncomingMessage, res: ServerResponse) => flowEventOf(res)?.message ?? 'request failed',
    serializers: {
      req(req: { id: unknown; method: string; url: string; raw?: IncomingMessage }) {
        return { id: req.id, method: req.method, url: loggableUrl(req.raw?.url ?? req.url) };
      },
      res(res: { statusCode: number }) {
        return { statusCode: res.statusCode };
      },
      err(error: Error & { code?: string }) {
        return { type: error.name, code: error.code, message: error.message };
      },
    },
  });
}

/** A flow event (`connected`, `failed`, …) waiting to be written with its request's log line. */
export interface FlowEvent {
  event: string;
  message: string;
  fields: Record<string, unknown>;
}

/** Where a response keeps its flow event until pino-http writes the request line. */
const FLOW_EVENT = Symbol('flowEvent');

type WithFlowEvent = ServerResponse & { [FLOW_EVENT]?: FlowEvent };

function flowEventOf(res: ServerResponse): FlowEvent | undefined {
  return (res as WithFlowEvent)[FLOW_EVENT];
}

function withFlowEvent(res: ServerResponse, value: Record<string, unknown>): Record<string, unknown> {
  const flow = flowEventOf(res);
  return flow ? { ...value, event: flow.event, ...flow.fields } : value;
}

/**
 * Notes a flow event for the request's log line; answers false when the
 * response already carries one (the caller then logs it on a line of its own).
 */
export function noteFlowEvent(res: ServerResponse, flow: FlowEvent): boolean {
  const target = res as WithFlowEvent;
  if (target[FLOW_EVENT]) return false;
  target[FLOW_EVENT] = flow;
  return true;
}
