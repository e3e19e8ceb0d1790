import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { grantedItems, missing, parsePermissionList, permissionsFor, union, type RequestedPermissions } from '../ipernity';
import { peekedSession } from '../sessions/stack';
import { single } from './context';

/** The identity headers a reverse proxy passes on to the site behind it. */
export const IDENTITY_HEADERS = {
  userId: 'X-Ipernity-User-Id',
  username: 'X-Ipernity-Username',
  permissions: 'X-Ipernity-Permissions',
} as const;

/** What a guarded location asks for: `?require=doc:write,profile:read` or `?methods=upload.file`; undefined when it names something unknown. */
function requiredBy(req: Request): RequestedPermissions | undefined {
  const query = req.query as Record<string, unknown>;
  const list = single(query.require);
  const methods = single(query.methods);
  if ((query.require !== undefined && list === undefined) || (query.methods !== undefined && methods === undefined)) return undefined;
  try {
    const fromList = list ? parsePermissionList(list) : {};
    const fromMethods = methods ? permissionsFor(methods.split(',').map((name) => name.trim()).filter(Boolean)) : {};
    return union(fromList, fromMethods);
  } catch {
    return undefined;
  }
}

function bare(res: Response, status: number): void {
  res.status(status).set('Cache-Control', 'no-store').end();
}

/**
 * `GET /connect/auth`: the sub-request of nginx's `auth_request`, Traefik's
 * `forwardAuth` and Caddy's `forward_auth`. 200 with the identity headers
 * when the browser's session is connected (and grants what `require` or
 * `methods` asks), 401 when it is not, 403 when the grant falls short, 400
 * when the guarded location asks for something unknown. Never a redirect, a
 * body or a cookie: the session is read, never written, and ipernity is not
 * asked (the token is checked where it is used).
 */
export function forwardAuth(peek: RequestHandler): RequestHandler {
  return function forwardAuth(req, res) {
    const required = requiredBy(req);
    if (!required) {
      bare(res, 400);
      return;
    }
    // a store that does not answer is 503, still bare: the proxy shows its own error page
    peek(req, res, (error?: unknown) => (error ? bare(res, 503) : decide(req, res, required)));
  };
}

/** The answer for the session `peek` read: 200 with the identity, 401 or 403. */
function decide(req: Request, res: Response, required: RequestedPermissions): void {
  const connection = peekedSession(req)?.connection;
  if (!connection) {
    bare(res, 401);
    return;
  }
  if (Object.keys(missing(connection.permissions, required)).length > 0) {
    bare(res, 403);
    return;
  }
  res.set({
    [IDENTITY_HEADERS.userId]: encodeURIComponent(connection.user.userId),
    // percent-encoded UTF-8: a header carries Latin-1 at most, and usernames need not be ASCII
    [IDENTITY_HEADERS.username]: encodeURIComponent(connection.user.username),
    [IDENTITY_HEADERS.permissions]: grantedItems(connection.permissions).map(([item, level]) => `${item}=${level}`).join(','),
  });
  bare(res, 200);
}

/**
 * `/connect/auth` as a router of its own: the application mounts it before
 * the canonical-host redirect and the URL-length page, since a proxy's
 * sub-request may name an internal host and must never get a redirect or a
 * page; a site that assembles its own app mounts it the same way.
 */
export function createForwardAuthRouter(peek: RequestHandler): Router {
  const router = express.Router();
  router.get('/connect/auth', forwardAuth(peek));
  router.all('/connect/auth', function bareMethodNotAllowed(_req, res) {
    res.status(405).set({ Allow: 'GET, HEAD', 'Cache-Control': 'no-store' }).end();
  });
  return router;
}
