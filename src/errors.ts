/**
 * Every error the server can end in, by its stable code: the HTTP status it
 * is answered with and the page texts (`error.<page>.title` and
 * `error.<page>.message`, in every language of `web/locales/`) a visitor
 * reads. Callers and tests branch on the code, never on the wording.
 * `test/web/error-registry.test.ts` fails on a code without its texts in
 * each language, or one that nothing raises.
 *
 * Codes with no status never reach a visitor: they are logged or end the
 * process.
 */
export const ERRORS = {
  // the protocol layer (src/ipernity)
  /** ipernity answered `status: error`; its own numeric code is in the log. `auth.getToken`'s 1 and 2 (a frob spent, expired or never issued) are the visitor's request, not an outage: 400 and the FROB_USED page. */
  IPERNITY_API_ERROR: { status: 502, pages: ['IPERNITY_REFUSED', 'FROB_USED'] },
  UPSTREAM_TIMEOUT: { status: 504, pages: ['UPSTREAM_TIMEOUT'] },
  UPSTREAM_NETWORK: { status: 502, pages: ['UPSTREAM_UNAVAILABLE'] },
  UPSTREAM_HTTP_STATUS: { status: 502, pages: ['UPSTREAM_UNAVAILABLE'] },
  UPSTREAM_BAD_RESPONSE: { status: 502, pages: ['UPSTREAM_UNAVAILABLE'] },
  FROB_MISSING: { status: 400, pages: ['FROB_MISSING'] },
  FROB_MALFORMED: { status: 400, pages: ['FROB_MALFORMED'] },
  FROB_REPEATED: { status: 400, pages: ['FROB_REPEATED'] },
  PERMISSION_INVALID: { status: 400, pages: ['PERMISSION_INVALID'] },
  // ipernity's answers to a connection in use (a site's own calls)
  /** 110: the visitor's token lacks the permission the method needs; they can connect again granting it. */
  IPERNITY_PERMISSION_DENIED: { status: 403, pages: ['IPERNITY_PERMISSION_DENIED'] },
  /** 112: the application's request quota is reached, for every visitor at once. */
  IPERNITY_QUOTA_REACHED: { status: 429, pages: ['IPERNITY_QUOTA_REACHED'] },
  /** 113: too many requests from this server's address; the error carries the delay to wait. */
  IPERNITY_RATE_LIMITED: { status: 429, pages: ['IPERNITY_RATE_LIMITED'] },
  /** 120: POST required. The client POSTs every call, so this is our defect: 502, ipernity refused what we sent. */
  IPERNITY_POST_REQUIRED: { status: 502, pages: ['IPERNITY_CALL_FAILED'] },
  // ipernity's OAuth refusals (130-135, OAuth mode): what the server signed, not what the visitor did
  IPERNITY_OAUTH_VERSION: { status: 502, pages: ['IPERNITY_CALL_FAILED'] },
  IPERNITY_OAUTH_PARAMETER_MISSING: { status: 502, pages: ['IPERNITY_CALL_FAILED'] },
  /** 132: the request's timestamp is too far from ipernity's clock: the log line tells the operator to check the server's clock. */
  IPERNITY_OAUTH_CLOCK_SKEW: { status: 502, pages: ['IPERNITY_CLOCK_SKEW'] },
  IPERNITY_OAUTH_NONCE_USED: { status: 502, pages: ['IPERNITY_CALL_FAILED'] },
  /** 134: the timestamp is refused (before one already used, or unreadable): a clock that went back, as a rule. */
  IPERNITY_OAUTH_TIMESTAMP: { status: 502, pages: ['IPERNITY_CLOCK_SKEW'] },
  IPERNITY_OAUTH_SIGNATURE_METHOD: { status: 502, pages: ['IPERNITY_CALL_FAILED'] },
  // uploads (upload.file, upload.checkTickets)
  /** `upload.file`'s 2: the file is over the account's size limit (per file, or in all). */
  IPERNITY_FILE_TOO_LARGE: { status: 413, pages: ['IPERNITY_FILE_TOO_LARGE'] },
  /** An upload's ticket came back invalid: ipernity could not process the file (not an image or video it reads). */
  IPERNITY_UPLOAD_INVALID: { status: 422, pages: ['IPERNITY_UPLOAD_INVALID'] },
  /** Tickets still processing when waiting for them would pass its deadline: the upload went in, its documents are not ready yet. */
  IPERNITY_UPLOAD_PENDING: { status: 504, pages: ['IPERNITY_UPLOAD_PENDING'] },
  /** The file's stream failed, or gave another length than announced, before the upload was sent whole (e.g. the visitor's own upload was cut): nothing was uploaded. */
  UPLOAD_SOURCE_FAILED: { status: 400, pages: ['UPLOAD_SOURCE_FAILED'] },
  // using the connection (the visitor-bound client, the gateway): a page request is sent to the
  // warning page, a JSON request gets the link in the answer, so these have no page of their own
  /** The visitor has no ipernity connection: the answer carries `connectUrl`. */
  NOT_CONNECTED: { status: 401, pages: [] },
  /** The connection lacks what the method needs: the answer names `missing` and carries `upgradeUrl`. */
  PERMISSION_MISSING: { status: 403, pages: [] },
  /** ipernity says the token is revoked or the account closed (107, 108): the connection is cleared. */
  CONNECTION_REVOKED: { status: 401, pages: [] },
  /** The gateway does not forward this method (not in IPERNITY_API_METHODS, or not ipernity's); nothing was sent. */
  METHOD_NOT_ALLOWED_HERE: { status: 404, pages: [] },
  /** A gateway parameter is reserved, repeated, unknown to the method, missing or not a string: the answer names it. */
  API_PARAMETER_INVALID: { status: 400, pages: [] },
  /** ipernity refused the call for a reason of the method's own (a code below 100): its answer is passed on. */
  IPERNITY_METHOD_ERROR: { status: 400, pages: [] },
  /** The visitor made more gateway calls (and photo-page uploads) than API_RATE_LIMIT_PER_MINUTE allows; the page is the photo page's. */
  API_RATE_LIMITED: { status: 429, pages: ['API_RATE_LIMITED'] },
  // calls the client refuses before sending: a defect of the calling code
  IPERNITY_METHOD_UNKNOWN: { status: 500, pages: ['IPERNITY_CALL_FAILED'] },
  IPERNITY_TOKEN_REQUIRED: { status: 500, pages: ['IPERNITY_CALL_FAILED'] },
  IPERNITY_PARAMETER_MISSING: { status: 500, pages: ['IPERNITY_CALL_FAILED'] },
  IPERNITY_METHOD_NOT_PAGINATED: { status: 500, pages: ['IPERNITY_CALL_FAILED'] },

  // the flow
  ATTEMPT_MISSING: { status: 400, pages: ['ATTEMPT_MISSING'] },
  ATTEMPT_EXPIRED: { status: 400, pages: ['ATTEMPT_EXPIRED'] },
  FROB_MISMATCH: { status: 400, pages: ['FROB_MISMATCH'] },
  /** OAuth mode: the callback's `oauth_token` is not a request token this browser obtained (missing, malformed, another browser's, or spent). */
  OAUTH_TOKEN_MISMATCH: { status: 400, pages: ['OAUTH_TOKEN_MISMATCH'] },
  /** PUBLIC_URL is https but requests reach the server as http: the proxy in front of it is not trusted. */
  TRUST_PROXY_NEEDED: { status: 500, pages: ['TRUST_PROXY_NEEDED'] },

  // security and limits
  CSRF_INVALID: { status: 403, pages: ['CSRF_INVALID'] },
  RATE_LIMITED: { status: 429, pages: ['RATE_LIMITED'] },
  PAYLOAD_TOO_LARGE: { status: 413, pages: ['PAYLOAD_TOO_LARGE'] },
  URI_TOO_LONG: { status: 414, pages: ['URI_TOO_LONG'] },

  // the web layer
  NOT_FOUND: { status: 404, pages: ['NOT_FOUND'] },
  METHOD_NOT_ALLOWED: { status: 405, pages: ['METHOD_NOT_ALLOWED'] },
  BAD_REQUEST: { status: 400, pages: ['BAD_REQUEST'] },
  SESSION_STORE_UNAVAILABLE: { status: 503, pages: ['SESSION_STORE_UNAVAILABLE'] },
  /** A defect of ours. */
  INTERNAL: { status: 500, pages: ['INTERNAL'] },

  // never answered
  /** A sealed token that no configured key opens: the connection is forgotten (logged as a revocation reason). */
  TOKEN_UNREADABLE: { status: undefined, pages: [] },
  /** The environment is wrong: start-up stops and names each variable. */
  CONFIG_INVALID: { status: undefined, pages: [] },
} as const satisfies Record<string, { status: number | undefined; pages: readonly string[] }>;

export type ErrorCode = keyof typeof ERRORS;

/** The codes by name (`Codes.ATTEMPT_MISSING`), so that a typo is a compile error. */
export const Codes = Object.fromEntries(Object.keys(ERRORS).map((code) => [code, code])) as { readonly [C in ErrorCode]: C };

/** The HTTP status a code is answered with. */
export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status ?? 500;
}

/** The page a visitor sees for a code: its first page (IPERNITY_API_ERROR's second is chosen by the error handler). */
export function pageOf(code: ErrorCode): string {
  return ERRORS[code].pages[0] ?? 'INTERNAL';
}
