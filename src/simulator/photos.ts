import { ApiFailure } from './common';
import type { Library, SimulatedAlbum, SimulatedDoc, Viewer } from './library';
import type { Admitted } from './rules';
import type { SimulatorState } from './state';
import type { Tickets } from './upload';

type Json = Record<string, unknown>;

/** What the photo methods answer from: the library, the accounts, and where media is served. */
export interface PhotoContext {
  state: SimulatorState;
  library: Library;
  /** The simulator's own address as callers reach it (e.g. `https://site.example/sandbox/ipernity`). */
  base: string;
  limits: UploadLimits;
  tickets: Tickets;
}

/** How much an account may upload: per file, and in all (`upload.file` error 2 beyond). */
export interface UploadLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
}

export type Handler = (call: Admitted, context: PhotoContext) => Json;

const DEFAULT_PER_PAGE = 20;
const MAX_PER_PAGE = 100;
const MAX_MD5 = 20;

/** The address of one size of a photo: it carries the photo's secret, as ipernity's do. */
export function mediaUrl(base: string, doc: SimulatedDoc, label: string, ext: string): string {
  return `${base}/media/${doc.docId}/${doc.secret}/${encodeURIComponent(label)}.${ext}`;
}

/** The photo's page on the simulated ipernity. */
export function docLink(base: string, doc: SimulatedDoc): string {
  return `${base}/doc/${doc.ownerId}/${doc.docId}`;
}

function thumb(context: PhotoContext, doc: SimulatedDoc, label: string): Json {
  const sizes = context.library.sizes(doc);
  const size = sizes.find((candidate) => candidate.label === label) ?? sizes[sizes.length - 1];
  const ext = doc.upload?.facts.ext ?? 'png';
  return { label: size?.label, ext, w: String(size?.width ?? 0), h: String(size?.height ?? 0), url: mediaUrl(context.base, doc, size?.label ?? 'original', ext) };
}

/** A `<doc>` in a list, as `doc.getList` gives it. */
function listedDoc(context: PhotoContext, doc: SimulatedDoc, thumbsize: string): Json {
  return {
    doc_id: doc.docId,
    media: 'photo',
    license: String(doc.license),
    title: doc.title,
    owner_id: doc.ownerId,
    posted_at: String(doc.postedAt),
    is_public: doc.isPublic ? '1' : '0',
    link: docLink(context.base, doc),
    thumb: thumb(context, doc, thumbsize),
  };
}

function integer(value: string | undefined, fallback: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1) throw new ApiFailure(1, `${name} must be a whole number from 1`);
  return Math.min(Number(value), max);
}

/** One page of items, with ipernity's `total`, `page`, `pages` and `per_page` as strings. */
function paged<Item>(items: readonly Item[], params: Readonly<Record<string, string>>): { slice: Item[]; fields: Json } {
  const perPage = integer(params.per_page, DEFAULT_PER_PAGE, 'per_page', MAX_PER_PAGE);
  const page = integer(params.page, 1, 'page');
  const start = (page - 1) * perPage;
  return {
    slice: items.slice(start, start + perPage),
    fields: { total: String(items.length), page: String(page), pages: String(Math.ceil(items.length / perPage)), per_page: String(perPage) },
  };
}

function docList(context: PhotoContext, call: Admitted, docs: readonly SimulatedDoc[]): Json {
  const { slice, fields } = paged(docs, call.params);
  const thumbsize = call.params.thumbsize || '75x';
  return { ...fields, doc: slice.map((doc) => listedDoc(context, doc, thumbsize)) };
}

/** The user a list is for: `user_id`, else the token's user; error 1 when neither names a known account. */
function listUser(call: Admitted, context: PhotoContext): string {
  const userId = call.params.user_id || call.viewer?.userId;
  if (!userId || !context.state.users.has(userId)) throw new ApiFailure(1, 'User not found');
  return userId;
}

function visible(call: Admitted, context: PhotoContext): SimulatedDoc {
  const doc = context.library.visibleDoc(call.params.doc_id ?? '', call.viewer);
  if (!doc) throw new ApiFailure(1, 'Document not found');
  return doc;
}

/** A photo the token's user owns (for the writing methods): 1 when it is unknown or hidden, 2 when it is someone else's. */
function owned(call: Admitted, context: PhotoContext): SimulatedDoc {
  const doc = context.library.doc(call.params.doc_id ?? '');
  if (!doc || !context.library.canSee(doc, call.viewer)) throw new ApiFailure(1, 'Document not found');
  if (doc.ownerId !== call.viewer?.userId) throw new ApiFailure(2, 'Access denied: this document is not yours');
  return doc;
}

function ownedAlbum(call: Admitted, context: PhotoContext): SimulatedAlbum {
  const album = context.library.album(call.params.album_id ?? '');
  if (!album) throw new ApiFailure(1, 'Album not found');
  if (album.ownerId !== call.viewer?.userId) throw new ApiFailure(2, 'Access denied: this album is not yours');
  return album;
}

function keywords(value: string | undefined): string[] {
  return (value ?? '').split(',').map((word) => word.trim()).filter(Boolean);
}

function albumJson(context: PhotoContext, album: SimulatedAlbum, viewer: Viewer | undefined): Json {
  const docs = album.docIds.map((id) => context.library.doc(id)).filter((doc): doc is SimulatedDoc => doc !== undefined && context.library.canSee(doc, viewer));
  const cover = docs.find((doc) => doc.docId === album.coverId) ?? docs[0];
  return {
    album_id: album.albumId,
    title: album.title,
    description: album.description,
    count: String(docs.length),
    created_at: String(album.createdAt),
    owner_id: album.ownerId,
    ...(cover ? { cover: thumb(context, cover, '75x') } : {}),
  };
}

/** The photo methods the simulator answers, by name. */
export const PHOTO_METHODS: Readonly<Record<string, Handler>> = {
  'doc.getList'(call, context) {
    const userId = listUser(call, context);
    return { docs: docList(context, call, context.library.docsOf(userId, call.viewer)) };
  },
  'doc.search'(call, context) {
    const { params } = call;
    let docs = params.user_id ? context.library.docsOf(listUser(call, context), call.viewer) : context.library.allDocs(call.viewer);
    const text = params.text?.toLowerCase();
    if (text) docs = docs.filter((doc) => `${doc.title}\n${doc.description}\n${doc.tags.join(' ')}`.toLowerCase().includes(text));
    const tags = keywords(params.tags).map((tag) => tag.toLowerCase());
    if (tags.length) docs = docs.filter((doc) => doc.tags.some((tag) => tags.includes(tag.toLowerCase())));
    if (params.album_id) {
      const album = context.library.album(params.album_id);
      docs = album ? docs.filter((doc) => album.docIds.includes(doc.docId)) : [];
    }
    return { docs: docList(context, call, docs) };
  },
  'doc.get'(call, context) {
    const doc = visible(call, context);
    const owner = context.state.users.get(doc.ownerId);
    return {
      doc: {
        doc_id: doc.docId,
        title: doc.title,
        media: 'photo',
        license: String(doc.license),
        link: docLink(context.base, doc),
        owner: { user_id: doc.ownerId, username: owner?.username ?? '', realname: owner?.realname ?? '' },
        description: doc.description,
        dates: { posted_at: String(doc.postedAt), created: String(doc.postedAt) },
        visibility: { ispublic: doc.isPublic ? '1' : '0', isfriend: doc.isFriend ? '1' : '0', isfamily: doc.isFamily ? '1' : '0', share: doc.isPublic ? '0' : '1' },
        tags: { tag: [...doc.tags] },
        thumbs: { thumb: context.library.sizes(doc).map((size) => thumb(context, doc, size.label)) },
      },
    };
  },
  'doc.getMedias'(call, context) {
    const doc = visible(call, context);
    return { medias: { doc_id: doc.docId, media: context.library.sizes(doc).map((size) => thumb(context, doc, size.label)) } };
  },
  'doc.set'(call, context) {
    const doc = owned(call, context);
    if (call.params.title !== undefined) doc.title = call.params.title;
    if (call.params.description !== undefined) doc.description = call.params.description;
    return { doc: { doc_id: doc.docId } };
  },
  'doc.delete'(call, context) {
    const doc = owned(call, context);
    context.library.delete(doc);
    return { doc: { doc_id: doc.docId } };
  },
  'doc.tags.add'(call, context) {
    const doc = owned(call, context);
    for (const tag of keywords(call.params.keywords)) if (!doc.tags.includes(tag)) doc.tags.push(tag);
    return { tags: { doc_id: doc.docId, tag: [...doc.tags] } };
  },
  'doc.checkMD5'(call, context) {
    const sums = keywords(call.params.md5).map((sum) => sum.toLowerCase());
    if (sums.length > MAX_MD5) throw new ApiFailure(2, `Too many checksums: ${MAX_MD5} at most`);
    const mine = context.library.docsOf(call.viewer?.userId ?? '', call.viewer);
    const found = sums.flatMap((md5) => {
      const doc = mine.find((candidate) => context.library.md5(candidate) === md5);
      return doc ? [{ md5, doc_id: doc.docId }] : [];
    });
    return { docs: { total: String(found.length), doc: found } };
  },
  'album.getList'(call, context) {
    const userId = listUser(call, context);
    let albums = context.library.albumsOf(userId).map((album) => albumJson(context, album, call.viewer));
    if (call.params.empty !== '1') albums = albums.filter((album) => album.count !== '0');
    const { slice, fields } = paged(albums, call.params);
    return { albums: { ...fields, album: slice } };
  },
  'album.create'(call, context) {
    const album = context.library.createAlbum(call.viewer?.userId ?? '', call.params.title ?? '', call.params.description ?? '');
    return { album: { album_id: album.albumId } };
  },
  'album.docs.add'(call, context) {
    const album = ownedAlbum(call, context);
    const doc = owned(call, context);
    context.library.addToAlbum(album, doc);
    return { album: { album_id: album.albumId, doc_id: doc.docId } };
  },
  'album.docs.getList'(call, context) {
    const album = context.library.album(call.params.album_id ?? '');
    if (!album) throw new ApiFailure(1, 'Album not found');
    const docs = album.docIds.map((id) => context.library.doc(id)).filter((doc): doc is SimulatedDoc => doc !== undefined && context.library.canSee(doc, call.viewer));
    return { album: { album_id: album.albumId, title: album.title, ...docList(context, call, docs) } };
  },
  'account.getQuota'(call, context) {
    const user = context.state.users.get(call.viewer?.userId ?? '');
    const used = context.library.docsOf(call.viewer?.userId ?? '', call.viewer).reduce((sum, doc) => sum + (doc.upload?.bytes.length ?? 0), 0);
    const { maxTotalBytes, maxFileBytes } = context.limits;
    return {
      quota: {
        user_id: call.viewer?.userId,
        is_pro: user?.isPro ? '1' : '0',
        upload: { unlimited: '0', max: { bytes: String(maxTotalBytes) }, used: { bytes: String(used) }, left: { bytes: String(Math.max(0, maxTotalBytes - context.library.storedBytes)) } },
        maxfilesize: { photo: { bytes: String(maxFileBytes) } },
      },
    };
  },
};
