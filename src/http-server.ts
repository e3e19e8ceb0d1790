import http from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';

type RequestInit = (this: object, socket: Socket) => void;
type ResponseInit = (this: object, req: http.IncomingMessage, options?: unknown) => void;

/**
 * The server's timeouts, which `createHttpServer` applies unless told otherwise.
 *
 * Node looks for requests past `requestTimeout` or `headersTimeout` only
 * every `connectionsCheckingInterval` (30 s by default), so a request whose
 * headers came and whose body then stalled was held long past its 30 s.
 * Checked every second, it is answered 408 and closed within about
 * `requestTimeout` + 1 s. Only connections with a request under way are
 * checked (idle keep-alive ones are not), so the check costs next to nothing.
 *
 * `headersTimeout` must not exceed `requestTimeout` (Node refuses it in the
 * options); idle keep-alive connections are `keepAliveTimeout`'s alone,
 * longer than common proxies' idle timeout so that they close first.
 */
export const SERVER_TIMEOUTS = {
  requestTimeout: 30_000,
  headersTimeout: 20_000,
  keepAliveTimeout: 65_000,
  connectionsCheckingInterval: 1_000,
} as const;

/**
 * The slowest upload a server that takes them waits for: 256 KiB/s (about
 * 2 Mbit/s, a poor mobile link). Node's `requestTimeout` bounds a whole
 * request, body included, and cannot be set per route: at 30 s an upload had
 * to move 3.5 MB/s to fill UPLOAD_MAX_BYTES' 100 MiB, and a slower visitor got
 * a bare 408. See docs/decisions/upload-request-timeout.md.
 */
export const SLOWEST_UPLOAD_BYTES_PER_SECOND = 256 * 1024;

/** `requestTimeout` for a server that takes uploads of up to `maxUploadBytes` (none: the default). */
export function requestTimeoutFor(maxUploadBytes: number | undefined): number {
  if (maxUploadBytes === undefined) return SERVER_TIMEOUTS.requestTimeout;
  return Math.max(SERVER_TIMEOUTS.requestTimeout, Math.ceil(maxUploadBytes / SLOWEST_UPLOAD_BYTES_PER_SECOND) * 1000);
}

/** `options` with `SERVER_TIMEOUTS` for what they leave out; `headersTimeout` kept within `requestTimeout`. */
export function withServerTimeouts(options: http.ServerOptions = {}): http.ServerOptions {
  const requestTimeout = options.requestTimeout ?? SERVER_TIMEOUTS.requestTimeout;
  const limit = requestTimeout > 0 ? requestTimeout : Infinity;
  return {
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveTimeout,
    connectionsCheckingInterval: SERVER_TIMEOUTS.connectionsCheckingInterval,
    ...options,
    requestTimeout,
    headersTimeout: options.headersTimeout ?? Math.min(SERVER_TIMEOUTS.headersTimeout, limit),
  };
}

/** A constructor written as a class cannot run on an object made elsewhere. */
const isClass = (constructor: unknown): boolean => Function.prototype.toString.call(constructor).startsWith('class');

/**
 * Whether requests are made from the app's prototypes on this Node: it made
 * bare Express 5.3× as fast on Node 20, and 0.63× as fast on Node 24, whose
 * `Object.setPrototypeOf` no longer costs what it did
 * (docs/decisions/app-prototypes-on-node-20-only.md). Node 22 is unmeasured
 * and gets the plain server.
 */
export const PROTOTYPES_HELP = Number(process.versions.node.split('.')[0]) < 22;

/**
 * An HTTP server for an Express app whose requests and responses are made
 * with the app's own prototypes (`app.request`, `app.response`).
 *
 * Express gives every request and response those prototypes with
 * `Object.setPrototypeOf` when it starts handling them, which V8 makes slow
 * (nodejs/node#37457; expressjs/express#5998 proposes this way out). Here it
 * cost the warning page about half of its CPU, and objects changed that way,
 * with what they reach, survived V8's young-generation collections: at 200
 * callbacks a second a quarter of the young generation survived each one
 * and about 2 MB was promoted, pausing the server 3–7 ms each time and
 * bringing a full collection every two seconds. Made with the app's
 * prototypes, Express's call changes nothing.
 *
 * `options` are the server's, except the two constructors this sets; the
 * timeouts it leaves out are `SERVER_TIMEOUTS`.
 *
 * Node's `IncomingMessage` and `ServerResponse` are plain constructor
 * functions, so they run on an object made with another prototype. Should
 * a Node version make them classes, this is a plain server.
 */
export function createHttpServer(app: Express, serverOptions: http.ServerOptions = {}): http.Server {
  const options = withServerTimeouts(serverOptions);
  const IncomingMessage = http.IncomingMessage as unknown as RequestInit;
  const ServerResponse = http.ServerResponse as unknown as ResponseInit;
  if (!PROTOTYPES_HELP || isClass(IncomingMessage) || isClass(ServerResponse)) return http.createServer(options, app);

  // `new` with these makes an object whose prototype is the app's, then Node's constructor fills it in
  function AppRequest(this: object, socket: Socket): void {
    IncomingMessage.call(this, socket);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: object, req: http.IncomingMessage, responseOptions?: unknown): void {
    ServerResponse.call(this, req, responseOptions);
  }
  AppResponse.prototype = app.response;

  return http.createServer(
    {
      ...options,
      IncomingMessage: AppRequest as unknown as typeof http.IncomingMessage,
      ServerResponse: AppResponse as unknown as typeof http.ServerResponse,
    },
    app,
  );
}
