import type { Request, RequestHandler } from 'express';
import {
  IpernityApiError,
  IpernityPermissionError,
  methodSpec,
  openMedia,
  type MediaStream,
  missing,
  toParams,
  union,
  type IpernityClient,
  type MethodName,
  type Params,
  type RequestedPermissions,
  type UploadAnswer,
  type UploadFile,
  type UploadParams,
} from '../ipernity';
import { safeReturnTo } from '../flow/return-to';
import { forgetConnection, viewOf, type ConnectionView, type TokenCheckOptions } from '../flow/token-check';
import { TokenUnreadableError, type TokenCipher } from '../security/token-cipher';
import type { StoredConnection } from '../sessions/session-data';
import { wantsJson } from './answers';
import { ConnectionRevokedError, NotConnectedError, PermissionMissingError } from './errors';

type Json = Record<string, unknown>;

/** ipernity's codes for a token it no longer honours. */
const TOKEN_GONE = new Set([107, 108]);

/** ipernity, for the visitor of one request: every call carries their token, checked against their grant first. */
export interface VisitorClient {
  /** The connection as the site may see it (never the token); undefined when not connected. */
  connection(): Promise<ConnectionView | undefined>;
  /** True when the connection grants what the method needs (false when not connected). */
  allows(method: MethodName): Promise<boolean>;
  /** Resolves when the connection grants what the method needs; else the error `call` would refuse it with. */
  require(method: MethodName): Promise<void>;
  /**
   * Calls the method with the visitor's token. Refused before any request:
   * `NotConnectedError`, `PermissionMissingError` (naming what is missing,
   * with the warning page's link asking for it). ipernity's 110 is a
   * `PermissionMissingError` too; its 107 and 108 clear the connection and
   * are a `ConnectionRevokedError`. Other failures are the client's typed errors.
   */
  call(method: MethodName, params?: Params): Promise<Json>;
  /**
   * One size of one of the visitor's photos (a label of `doc.getMedias`, e.g.
   * `240` or `original`), streamed from ipernity's media host: found through
   * `doc.getMedias` with the visitor's token, so a private photo's secret
   * address never reaches the browser. `undefined` when there is no such
   * photo for this visitor, or no such size.
   */
  media(docId: string, label: string): Promise<MediaStream | undefined>;
  /**
   * `upload.file` with the visitor's token: the file streamed to ipernity
   * (e.g. the incoming request's file part), checked and answered as `call`
   * is: the ticket, or the document with `async: '0'`.
   */
  upload(file: UploadFile, params?: UploadParams): Promise<UploadAnswer>;
}

export interface VisitorClientOptions {
  client: IpernityClient;
  cipher: TokenCipher;
  tokenCheck: Pick<TokenCheckOptions, 'onRevoked'>;
  /** Loads the visitor's session when the route has not (the session stack's `optional`). */
  session: RequestHandler;
  /** Where the connect routes are mounted (`''` at the root). */
  basePath: string;
  /** The site's origin (PUBLIC_URL's): a script's page is come back to only when it is on it. */
  origin: string;
  /** How long ipernity's media host may stay silent (IPERNITY_TIMEOUT_MS). */
  timeoutMs: number;
}

/** Where a link made for this request comes back to: the page itself, or, for a script's request, the page that made it. */
function comeBackTo(req: Request, origin: string): string {
  if (!wantsJson(req)) return safeReturnTo(req.originalUrl);
  const referer = req.headers.referer;
  if (!referer) return '/';
  try {
    const from = new URL(referer);
    return from.origin === origin ? safeReturnTo(from.pathname + from.search) : '/';
  } catch {
    return '/';
  }
}

/** Makes `ipernity(req)`: the visitor-bound client of one request. */
export function createVisitorClients(options: VisitorClientOptions): (req: Request) => VisitorClient {
  const { client, cipher, basePath, timeoutMs } = options;

  /** The warning page's address asking for `permissions` (nothing named: the site's default), coming back to this page. */
  function warningPage(req: Request, permissions: RequestedPermissions = {}): string {
    return `${basePath}/connect?${new URLSearchParams({ ...toParams(permissions), return_to: comeBackTo(req, options.origin) }).toString()}`;
  }

  function loadSession(req: Request): Promise<StoredConnection | undefined> {
    if (req.session || !req.res) return Promise.resolve(req.session?.connection);
    return new Promise((resolve, reject) => {
      options.session(req, req.res as NonNullable<Request['res']>, (error?: unknown) => (error ? reject(error) : resolve(req.session?.connection)));
    });
  }

  function lacking(connection: StoredConnection, method: string): RequestedPermissions {
    const { permission } = methodSpec(method);
    return permission ? missing(connection.permissions, { [permission.item]: permission.level }) : {};
  }

  /** The error for a connection that lacks `needed`: its link asks for what is granted and what is needed, together. */
  function permissionMissing(req: Request, connection: StoredConnection, method: string, needed: RequestedPermissions, cause?: unknown): PermissionMissingError {
    return new PermissionMissingError(method, needed, warningPage(req, union(connection.permissions, needed)), { cause });
  }

  function revoked(req: Request, reason: string, cause?: unknown): ConnectionRevokedError {
    if (req.session?.connection) forgetConnection(req, options.tokenCheck, reason);
    return new ConnectionRevokedError(warningPage(req), { cause });
  }

  return function ipernity(req) {
    /** The connection, when it covers `method`; else the error that says why not. */
    async function covering(method: MethodName): Promise<StoredConnection> {
      const connection = await loadSession(req);
      if (!connection) throw new NotConnectedError(warningPage(req));
      const needed = lacking(connection, method);
      if (Object.keys(needed).length > 0) throw permissionMissing(req, connection, method, needed);
      return connection;
    }

    /** Runs `send` with the visitor's token once the connection covers `method`; ipernity's refusals of the token become the connection's errors. */
    async function withToken<T>(method: MethodName, send: (token: string) => Promise<T>): Promise<T> {
      const connection = await covering(method);
      let token: string;
      try {
        token = cipher.decrypt(connection.sealedToken);
      } catch (error) {
        if (error instanceof TokenUnreadableError) throw revoked(req, 'TOKEN_UNREADABLE', error);
        throw error;
      }
      try {
        return await send(token);
      } catch (error) {
        // ipernity's 110 names no permission: the list's says what to ask for (none known: its own error stands)
        if (error instanceof IpernityPermissionError && Object.keys(error.required).length > 0) throw permissionMissing(req, connection, method, error.required, error);
        if (error instanceof IpernityApiError && TOKEN_GONE.has(error.apiCode)) throw revoked(req, `IPERNITY_${error.apiCode}`, error);
        throw error;
      }
    }

    const visitor: VisitorClient = {
      async connection() {
        const connection = await loadSession(req);
        return connection ? viewOf(connection) : undefined;
      },
      async allows(method) {
        const connection = await loadSession(req);
        return connection !== undefined && Object.keys(lacking(connection, method)).length === 0;
      },
      async require(method) {
        await covering(method);
      },
      call(method, params = {}) {
        return withToken(method, (token) => client.call(method, params, token));
      },
      upload(file, params = {}) {
        return withToken('upload.file', (token) => client.upload(file, params, token));
      },
      async media(docId, label) {
        let answer: Json;
        try {
          answer = await visitor.call('doc.getMedias', { doc_id: docId });
        } catch (error) {
          if (error instanceof IpernityApiError && error.apiCode === 1) return undefined; // no such document, for this visitor
          throw error;
        }
        const medias = (answer.medias as { media?: unknown } | undefined)?.media;
        const found = (Array.isArray(medias) ? medias : [medias]).find((media): media is { url: string } => typeof media === 'object' && media !== null && (media as Json).label === label && typeof (media as Json).url === 'string');
        return found ? openMedia(found.url, timeoutMs) : undefined;
      },
    };
    return visitor;
  };
}
