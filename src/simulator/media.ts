import type { Router } from 'express';
import type { Eta } from 'eta';
import { sendPage } from './common';
import { docLink, mediaUrl } from './photos';
import type { Library } from './library';
import type { SimulatorState } from './state';
import { baseOf } from './api';

/** How long a browser or proxy may keep a photo: its address changes with its secret, never its bytes. */
const MEDIA_CACHE = 'public, max-age=86400';

export interface MediaOptions {
  library: Library;
  state: SimulatorState;
  eta: Eta;
  base?: string;
}

/**
 * The photos themselves, at the addresses the API gives
 * (`/media/<doc_id>/<secret>/<label>.<ext>`: whoever has one sees the
 * photo, as on ipernity), and each photo's page (`/doc/<user_id>/<doc_id>`).
 */
export function mediaRoutes(router: Router, { library, state, eta, base }: MediaOptions): void {
  router.get('/media/:docId/:secret/:file', function media(req, res) {
    const doc = library.doc(req.params.docId);
    const match = /^(.+)\.([a-z]{3,4})$/.exec(req.params.file);
    const found = doc && match && doc.secret === req.params.secret ? library.media(doc, match[1] as string) : undefined;
    if (!found || found.ext !== match?.[2]) {
      res.status(404).type('text').set('Cache-Control', 'no-store').send('No such photo on the ipernity simulator');
      return;
    }
    res.status(200).type(found.type).set({ 'Cache-Control': MEDIA_CACHE, 'Content-Length': String(found.bytes.length), 'X-Content-Type-Options': 'nosniff' }).end(found.bytes);
  });

  router.get('/doc/:userId/:docId', function docPage(req, res) {
    const doc = library.doc(req.params.docId);
    if (!doc || doc.ownerId !== req.params.userId) {
      sendPage(eta, res, 404, 'simulator/message', { base: req.baseUrl, title: 'No such photo', message: 'This photo does not exist on the ipernity simulator, or it was deleted.' });
      return;
    }
    if (!doc.isPublic) {
      sendPage(eta, res, 403, 'simulator/message', { base: req.baseUrl, title: 'A private photo', message: 'Its owner keeps this photo private: only they see it on ipernity.' });
      return;
    }
    const here = baseOf(req, base);
    const sizes = library.sizes(doc);
    const size = sizes.find((candidate) => candidate.label === '500') ?? sizes[sizes.length - 1];
    const owner = state.users.get(doc.ownerId);
    sendPage(eta, res, 200, 'simulator/doc', {
      base: req.baseUrl,
      title: doc.title,
      description: doc.description,
      tags: doc.tags,
      owner: owner?.realname ?? owner?.username ?? doc.ownerId,
      image: size ? { url: mediaUrl(here, doc, size.label, doc.upload?.facts.ext ?? 'png'), width: size.width, height: size.height } : undefined,
      link: docLink(here, doc),
    });
  });
}
