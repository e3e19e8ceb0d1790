import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Sends a page request on another host to the same path on PUBLIC_URL
 * (308), so that the cookies set before a flow are the ones its callback
 * gets back. Never an open redirect: the target is PUBLIC_URL's origin and a
 * path.
 */
export function canonicalHost(publicUrl: URL): RequestHandler {
  return function canonicalHostRedirect(req: Request, res: Response, next: NextFunction) {
    if ((req.method === 'GET' || req.method === 'HEAD') && req.hostname !== publicUrl.hostname) {
      const target = req.originalUrl.startsWith('/') && !req.originalUrl.startsWith('//') ? req.originalUrl : '/';
      res.redirect(308, publicUrl.origin + target);
      return;
    }
    next();
  };
}
