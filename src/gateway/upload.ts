import { Busboy, type BusboyFileStream, type BusboyHeaders } from '@fastify/busboy';
import type { Request, Response } from 'express';
import { Codes } from '../errors';
import { findMethod, IpernityApiError, UploadSourceError, type MethodSpec, type UploadAnswer } from '../ipernity';
import type { VisitorClient } from '../connection/visitor-client';
import type { Csrf } from '../security/csrf';
import { WebError } from '../web/errors';
import type { Metrics } from '../web/metrics';
import { drainBody } from '../web/drain';
import { sendMethodError } from './method-error';
import { gatewayParams } from './params';

/** What a multipart body may add around the file: the fields, boundaries and part headers. */
const MULTIPART_ROOM = 64 * 1024;
/** The text fields of an upload, at most (upload.file has 18 optional parameters, and `_csrf`). */
const MAX_FIELDS = 32;
const MAX_FIELD_BYTES = 4096;
/** A body that stops moving this long while no file streams is one the parser stalled on (see `watch` below). */
const STALL_MS = 1000;

export interface UploadThroughOptions {
  /** UPLOAD_MAX_BYTES: a larger file is refused, or cut off and its upload aborted. */
  maxBytes: number;
  ipernity: (req: Request) => VisitorClient;
  csrf: Csrf;
  metrics?: Metrics;
  /** Fields sent when the body leaves them out (a page's unchecked checkbox sends nothing: `{ is_public: '0' }`). */
  defaults?: Readonly<Record<string, string>>;
  /** What a finished upload answers; by default (the gateway) ipernity's ticket, or the document, as JSON. */
  answer?: (res: Response, answer: UploadAnswer) => void;
}

/** The gateway's answer: ipernity's ticket, or the document with `async=0`. */
function answerJson(res: Response, answer: UploadAnswer): void {
  res.status(200).json({ ...(answer.ticket ? { ticket: answer.ticket } : {}), ...(answer.docId ? { doc_id: answer.docId } : {}), api: { status: 'ok' } });
}

function invalid(parameter: string, message: string): WebError {
  return new WebError(Codes.API_PARAMETER_INVALID, message, { details: { parameter } });
}

function tooLarge(maxBytes: number): WebError {
  return new WebError(Codes.PAYLOAD_TOO_LARGE, `the file is larger than ${maxBytes} bytes`, { details: { limit: maxBytes } });
}

/**
 * `upload.file` from a multipart/form-data body, streamed to ipernity as it
 * arrives: never held whole, never written to disk. The text fields come
 * first (as a form with its file input last sends them), then exactly one
 * `file` part. Refused before anything is sent: a declared length over
 * `maxBytes`, the CSRF checks (with `_csrf` among the fields for a client
 * without Fetch Metadata), a field upload.file does not take, a field after
 * the file, a part of another name. A file that grows past `maxBytes` is cut
 * off and ipernity's request aborted (413); a visitor who goes away aborts it
 * too. Answers ipernity's ticket, or the document with `async=0`, as JSON
 * (or as `options.answer` says, e.g. a page's redirect).
 */
export function uploadThrough(options: UploadThroughOptions): (req: Request, res: Response) => Promise<void> {
  const spec = findMethod('upload.file') as MethodSpec;
  const { maxBytes } = options;

  function count(outcome: string, bytes: number): void {
    options.metrics?.uploads.inc({ outcome });
    options.metrics?.uploadBytes.inc(bytes);
  }

  return async function upload(req, res) {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_ROOM) {
      count('too_large', 0);
      throw tooLarge(maxBytes);
    }
    // the visitor may go away at any point, also while the connection is being checked
    let gone = false;
    let onGone: (() => void) | undefined;
    req.once('close', () => {
      if (req.readableEnded) return;
      gone = true;
      onGone?.();
    });
    const visitor = options.ipernity(req);
    // not connected, or no doc:write: said before a byte of the body is read
    await visitor.require('upload.file');
    if (gone) {
      count('visitor_gone', 0);
      return;
    }

    let parser: InstanceType<typeof Busboy>;
    try {
      parser = new Busboy({ headers: req.headers as BusboyHeaders, limits: { files: 1, fileSize: maxBytes, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, parts: MAX_FIELDS + 1 } });
    } catch {
      throw invalid('file', 'the multipart body has no boundary');
    }
    const fields: Record<string, string | string[]> = {};
    let file: BusboyFileStream | undefined;
    let uploading: Promise<UploadAnswer> | undefined;
    let bytes = 0;
    let cut = false;
    let settled = false;
    let parsed = false;

    const finished = new Promise<UploadAnswer>((resolve, reject) => {
      const fail = (error: unknown): void => {
        if (settled) return;
        settled = true;
        req.unpipe(parser);
        file?.destroy(error as Error); // aborts the request to ipernity
        reject(error);
      };

      // a part with no name (`form-data; filename="a.png"`) comes with `undefined`: read as '', so that it is refused, not thrown on (a crash)
      parser.on('field', (unnamed: string | undefined, value: string) => {
        const name = unnamed ?? '';
        if (file) {
          fail(invalid(name.slice(0, 64), `${name.slice(0, 64)} comes after the file: every field must come before it`));
          return;
        }
        // a text part named "file" (no filename) would be signed and sent as a parameter, which ipernity refuses (a 502)
        if (name === 'file') {
          fail(invalid('file', 'the file must be a file part (with a filename), not a text field'));
          return;
        }
        const had = fields[name];
        fields[name] = had === undefined ? value : ([] as string[]).concat(had, value);
      });
      parser.on('file', (unnamed: string | undefined, stream: BusboyFileStream, fileName: string | undefined, _encoding: string, mimeType: string | undefined) => {
        const name = unnamed ?? '';
        // refused already (the parser goes on with the chunk it holds after unpipe): no upload may start for an answered request
        if (settled) {
          stream.resume();
          return;
        }
        if (name !== 'file') {
          stream.resume();
          fail(invalid(name.slice(0, 64), `the only file part is "file", not "${name.slice(0, 64)}"`));
          return;
        }
        file = stream;
        // its failures are answered through `fail` or the upload's own error
        stream.on('error', () => undefined);
        stream.on('limit', () => {
          cut = true;
          fail(tooLarge(maxBytes));
        });
        // the fields so far are the form: the CSRF check reads its token there
        req.body = fields;
        options.csrf.verify(req, res, (error?: unknown) => {
          if (settled) return;
          if (error) {
            fail(error);
            return;
          }
          let params: Record<string, string>;
          try {
            params = gatewayParams('upload.file', spec, { ...options.defaults, ...fields });
          } catch (refused) {
            fail(refused);
            return;
          }
          uploading = visitor.upload({ stream, fileName: fileName || 'upload', contentType: mimeType || 'application/octet-stream' }, params);
          uploading.catch(fail);
        });
      });
      parser.on('filesLimit', () => fail(invalid('file', 'one file at most')));
      parser.on('fieldsLimit', () => fail(invalid('', `${MAX_FIELDS} fields at most`)));
      parser.on('partsLimit', () => fail(invalid('', 'too many parts')));
      parser.on('error', (error: Error) => fail(invalid('file', `the multipart body cannot be read (${error.message.slice(0, 100)})`)));
      parser.on('finish', () => {
        parsed = true;
        if (settled) return;
        if (!uploading) {
          fail(invalid('file', 'no file: send one part named "file"'));
          return;
        }
        uploading.then((answer) => {
          settled = true;
          resolve(answer);
        }, fail);
      });
      // the visitor went away (or the body stopped short): ipernity's request is aborted with the file stream
      onGone = () => fail(new UploadSourceError('upload.file', 'the upload was cut off by the visitor'));
      // counted as they arrive (the body, parts and all): a listener on the file part would set it flowing before the upload reads it
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.pipe(parser);
      // @fastify/busboy stalls for good on a part it skips unread (a Content-Disposition other than form-data, or none) over 16 KB:
      // the body stops moving with no file streaming. Refused then, instead of held until the request timeout (a 408 at 30 s)
      let stalledSince: number | undefined;
      const watch = setInterval(() => {
        if (settled || parsed) {
          clearInterval(watch);
          return;
        }
        const streaming = file !== undefined && !file.readableEnded && !file.destroyed;
        if (streaming || !(req.readableEnded || req.readableFlowing === false)) {
          stalledSince = undefined;
          return;
        }
        stalledSince ??= Date.now();
        if (Date.now() - stalledSince >= STALL_MS) fail(invalid('file', 'the multipart body cannot be read (a part that is not form-data)'));
      }, STALL_MS / 4);
      watch.unref();
    });

    let answer: UploadAnswer;
    try {
      answer = await finished;
    } catch (error) {
      count(cut ? 'too_large' : error instanceof WebError ? error.code.toLowerCase() : ((error as { code?: string }).code ?? 'error').toLowerCase(), bytes);
      // the connection is closed after the answer, which the error handler gives once the rest of the body is read (drainBody)
      res.set('Connection', 'close');
      if (cut) throw tooLarge(maxBytes);
      // upload.file's own refusal (1: no file or an empty one, as a form sent without a file gives) is the visitor's, not an outage: a 400 with ipernity's answer, as the gateway passes on a call's
      if (!options.answer && error instanceof IpernityApiError && error.apiCode < 100 && error.code === Codes.IPERNITY_API_ERROR) {
        await drainBody(req);
        sendMethodError(res, error);
        return;
      }
      throw error;
    }
    count('ok', bytes);
    (options.answer ?? answerJson)(res, answer);
  };
}
