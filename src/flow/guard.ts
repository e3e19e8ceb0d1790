import type { RequestHandler } from 'express';
import { missing, permissionsFor, toParams, type RequestedPermissions } from '../ipernity';
import { safeReturnTo } from './return-to';
import { seeOther } from '../web/see-other';

export interface GuardOptions {
  /** The session middleware that loads a visitor's session when they have one. */
  session: RequestHandler;
  /** Where the connect router is mounted (`''` at the root). */
  basePath: string;
}

/**
 * Makes `requirePermission(required)`: a middleware that lets a request
 * through when the visitor's connection grants `required`, and otherwise
 * sends them to the warning page asking for exactly what is missing, with
 * `return_to` set to where they were going.
 */
/** What a route needs: permissions (`{ doc: 'write' }`), or the API methods it calls (`{ methods: ['upload.file'] }`). */
export type PermissionRequirement = RequestedPermissions | { readonly methods: readonly string[] };

export function createPermissionGuard(options: GuardOptions): (requirement: PermissionRequirement) => RequestHandler {
  return function requirePermission(requirement) {
    // an unknown method name fails here, when the site's routes are built, not on a visitor's request
    const required: RequestedPermissions = 'methods' in requirement ? permissionsFor(requirement.methods as string[]) : (requirement as RequestedPermissions);
    return function requirePermissionHandler(req, res, next) {
      options.session(req, res, (error?: unknown) => {
        if (error) {
          next(error);
          return;
        }
        const connection = req.session?.connection;
        const lacking = connection ? missing(connection.permissions, required) : required;
        if (connection && Object.keys(lacking).length === 0) {
          next();
          return;
        }
        const query = new URLSearchParams({ ...toParams(lacking), return_to: safeReturnTo(req.originalUrl) });
        seeOther(res, `${options.basePath}/connect?${query.toString()}`);
      });
    };
  };
}
