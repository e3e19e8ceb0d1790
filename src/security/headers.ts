import helmet from 'helmet';
import type { RequestHandler } from 'express';

/** Where ipernity serves photos from (its media hosts are subdomains, e.g. `u1.ipernity.com`). */
export const IPERNITY_MEDIA_HOSTS = 'https://*.ipernity.com';

export interface SecurityHeadersOptions {
  /** ipernity's authorization page: the form to /connect is answered with a redirect there. */
  authorizeUrl: string;
  /** PUBLIC_URL is https: HSTS and upgrade-insecure-requests. */
  secure: boolean;
}

/** The pages' security headers: a Content-Security-Policy without inline script or style, no referrer, HSTS on https. */
export function securityHeaders(options: SecurityHeadersOptions): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        // thumbnails of public photos come straight from ipernity's media hosts (the sandbox's from its own path)
        imgSrc: ["'self'", 'data:', IPERNITY_MEDIA_HOSTS],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        // the form to /connect is answered with a redirect to ipernity: it must be allowed as a form target
        formAction: ["'self'", new URL(options.authorizeUrl).origin],
        ...(options.secure ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    referrerPolicy: { policy: 'no-referrer' }, // the callback's URL holds the frob
    strictTransportSecurity: options.secure ? { maxAge: 31_536_000 } : false,
    // headers only Internet Explorer 8, Flash and the retired XSS auditor read
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
}
