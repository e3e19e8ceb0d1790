import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import { toParams, union } from '../ipernity';
import type { Csrf } from '../security/csrf';
import { type Translate } from '../web/i18n';
import { methodNotAllowed, WebError } from '../web/errors';
import { Codes } from '../errors';
import { requestLog } from '../web/logging';
import type { Metrics } from '../web/metrics';
import { seeOther } from '../web/see-other';
import type { VisitorClient } from '../connection/visitor-client';
import { ConnectionRevokedError, NotConnectedError, PermissionMissingError } from '../connection/errors';
import { GATEWAY_PATH } from '../gateway/router';
import { uploadThrough } from '../gateway/upload';

/** The photo page (HOME_PAGE=photos): what it needs beyond the connection page. */
export interface PhotoPageOptions {
  /** The gateway forwards `doc.getMedias`: private thumbnails come through `/api/ipernity/media/…`, their secret address never in the page. */
  mediaThroughGateway: boolean;
  /** UPLOAD_MAX_BYTES. */
  uploadMaxBytes: number;
  metrics?: Metrics;
  /** API_RATE_LIMIT_PER_MINUTE's limiter, shared with the gateway: an upload from the page counts as a gateway call. */
  rateLimit?: RequestHandler;
}

type Json = Record<string, unknown>;

/** How many of the visitor's latest photos the photo page shows, and the size it asks for. */
const PHOTO_COUNT = 12;
const THUMB_SIZE = '240';
const DOC_ID = /^[0-9]{1,20}$/;
const LABEL = /^[a-z0-9]{1,20}$/;
const PIXELS = /^[0-9]{1,5}$/;

/** One thumbnail of the photo page. */
interface Photo {
  /** The photo's page on ipernity (its `link`), when it is an http(s) address. */
  href?: string;
  src: string;
  alt: string;
  width?: string;
  height?: string;
}

/** An http(s) address from ipernity's answer, else undefined (never a `javascript:` link in the page). */
function httpUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** The thumbnails of a `doc.getList` answer (a single doc may come as an object rather than a list). */
function photosOf(answer: Json, mediaThroughGateway: boolean, t: Translate): Photo[] {
  const list = (answer.docs as Json | undefined)?.doc;
  const docs: unknown[] = Array.isArray(list) ? list : list && typeof list === 'object' ? [list] : [];
  const photos: Photo[] = [];
  for (const entry of docs.slice(0, PHOTO_COUNT)) {
    if (!entry || typeof entry !== 'object') continue;
    const doc = entry as Json;
    const thumb = (doc.thumb && typeof doc.thumb === 'object' ? doc.thumb : {}) as Json;
    const docId = typeof doc.doc_id === 'string' && DOC_ID.test(doc.doc_id) ? doc.doc_id : undefined;
    // the size ipernity gave (240, or the largest a photo has when it has no 240)
    const label = typeof thumb.label === 'string' && LABEL.test(thumb.label) ? thumb.label : THUMB_SIZE;
    // a private photo's address carries its secret: through the server when the gateway can, else as ipernity gave it
    const src = doc.is_public === '0' && mediaThroughGateway && docId ? `${GATEWAY_PATH}/media/${docId}/${label}` : httpUrl(thumb.url);
    if (!src) continue;
    const title = typeof doc.title === 'string' ? doc.title.trim() : '';
    const pixels = (value: unknown): string | undefined => (typeof value === 'string' && PIXELS.test(value) && value !== '0' ? value : undefined);
    photos.push({ href: httpUrl(doc.link), src, alt: title || t('home.photos.untitled'), width: pixels(thumb.w), height: pixels(thumb.h) });
  }
  return photos;
}

/** The warning page's address with `return_to` set to the home page: a link made for `POST /photos/upload` comes back where its form is. */
function backHome(link: string): string {
  const url = new URL(link, 'http://site.invalid');
  url.searchParams.set('return_to', '/');
  return url.pathname + url.search;
}

/** The upload's errors as the photo page's route answers them: the connection's come back home, a bad form is a page. */
function forThePage(error: unknown): unknown {
  if (error instanceof PermissionMissingError) return new PermissionMissingError(error.method, error.missing, backHome(error.link), { cause: error.cause });
  if (error instanceof ConnectionRevokedError) return new ConnectionRevokedError(backHome(error.link), { cause: error.cause });
  if (error instanceof NotConnectedError) return new NotConnectedError(backHome(error.link));
  // the gateway names the field for a script; a visitor's form gets the page for a form that could not be read
  if (error instanceof WebError && error.code === Codes.API_PARAMETER_INVALID) return new WebError(Codes.BAD_REQUEST, error.message, {}, { cause: error });
  return error;
}

/** The photo page: its part of the home page for a connected visitor, and `POST /photos/upload`. */
export interface PhotoPage {
  /** The latest photos (or why there are none) and the upload form or the link asking for doc:write; undefined when not connected. */
  section(req: Request, t: Translate): Promise<Record<string, unknown> | undefined>;
  /** `POST /photos/upload`. */
  router: Router;
}

/**
 * The home page as a small photo site (HOME_PAGE=photos, the sandbox's
 * default): the visitor's latest photos, read on the server with
 * `ipernity(req)` as a site's own code would, and an upload form whose file
 * is streamed to ipernity by the gateway's own upload code.
 */
export function createPhotoPage(options: PhotoPageOptions & { ipernity: (req: Request) => VisitorClient; session: RequestHandler; csrf: Csrf; logger: Logger }): PhotoPage {
  /** The page's part: the latest photos (or why there are none) and the upload form or the link asking for doc:write. */
  async function section(req: Request, t: Translate): Promise<Json | undefined> {
    const connection = req.session?.connection;
    if (!connection) return undefined;
    const visitor = options.ipernity(req);
    let photos: Photo[] | undefined;
    try {
      const answer = await visitor.call('doc.getList', { user_id: connection.user.userId, per_page: String(PHOTO_COUNT), thumbsize: THUMB_SIZE });
      photos = photosOf(answer, options.mediaThroughGateway, t);
    } catch (error) {
      // revoked: the connection is cleared and the notice left, as the token check does
      if (error instanceof ConnectionRevokedError) return undefined;
      requestLog(req, options.logger).warn({ event: 'photos_unavailable', err: error }, 'the photo list could not be read from ipernity; the page says so');
    }
    const uploadAllowed = await visitor.allows('upload.file');
    return {
      photos,
      photosFailed: photos === undefined,
      uploadAllowed,
      // what is granted and doc:write together, coming back here (as the visitor-bound client's upgrade links)
      uploadPermissionUrl: uploadAllowed ? undefined : `/connect?${new URLSearchParams({ ...toParams(union(connection.permissions, { doc: 'write' })), return_to: '/' }).toString()}`,
      uploaded: req.query.uploaded === '1',
    };
  }

  const router = express.Router();
  // the upload form's file, streamed to ipernity by the gateway's own code; an unchecked "public" box sends nothing: private
  const upload = uploadThrough({
    maxBytes: options.uploadMaxBytes,
    ipernity: options.ipernity,
    csrf: options.csrf,
    metrics: options.metrics,
    defaults: { is_public: '0' },
    answer: (res) => seeOther(res, '/?uploaded=1'),
  });
  router.post('/photos/upload', options.rateLimit ?? ((_req, _res, next) => next()), options.session, async function uploadPhoto(req, res) {
    try {
      await upload(req, res);
    } catch (error) {
      throw forThePage(error);
    }
  });
  router.all('/photos/upload', methodNotAllowed(['POST']));
  return { section, router };
}
