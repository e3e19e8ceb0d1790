import { createHash, randomBytes } from 'node:crypto';
import { renderPng, type ImageFacts, type Look, type Pattern } from './images';

/** A photo on the simulated ipernity. */
export interface SimulatedDoc {
  docId: string;
  ownerId: string;
  title: string;
  description: string;
  tags: string[];
  isPublic: boolean;
  isFriend: boolean;
  isFamily: boolean;
  license: number;
  /** Seconds since the epoch, as ipernity gives dates. */
  postedAt: number;
  /** In every media address of this photo: whoever has the address sees the photo. */
  secret: string;
  /** A photo made at start-up: rendered at each label's size when first asked. */
  look?: Look;
  /** A photo uploaded: its bytes, served at every label (the simulator does not resize). */
  upload?: { bytes: Buffer; facts: ImageFacts; fileName: string };
}

/** An album of photos. */
export interface SimulatedAlbum {
  albumId: string;
  ownerId: string;
  title: string;
  description: string;
  docIds: string[];
  coverId?: string;
  createdAt: number;
}

/** A size a photo is offered at: ipernity's labels, with the generated photos' pixel sizes. */
export interface MediaSize {
  label: string;
  width: number;
  height: number;
}

/** The labels of the generated photos, smallest first; `original` is the largest. */
export const MEDIA_SIZES: readonly MediaSize[] = [
  { label: '75x', width: 75, height: 75 },
  { label: '240', width: 240, height: 180 },
  { label: '500', width: 500, height: 375 },
  { label: 'original', width: 800, height: 600 },
];

/** What a caller may see: the token's user and whether it grants reading private photos. */
export interface Viewer {
  userId: string;
  canReadPrivate: boolean;
}

const STARTER_PHOTOS: ReadonlyArray<{ title: string; tags: string[]; pattern: Pattern; colour: [number, number, number]; isPublic: boolean; album?: number }> = [
  { title: 'Red harbour at dawn', tags: ['harbour', 'red', 'morning'], pattern: 'stripes', colour: [200, 40, 40], isPublic: true, album: 0 },
  { title: 'Blue tiles', tags: ['blue', 'pattern'], pattern: 'checks', colour: [30, 80, 190], isPublic: true, album: 0 },
  { title: 'Evening field', tags: ['field', 'evening', 'yellow'], pattern: 'gradient', colour: [230, 180, 30], isPublic: true, album: 1 },
  { title: 'Ripples in the pond', tags: ['pond', 'green'], pattern: 'rings', colour: [40, 150, 80], isPublic: true, album: 1 },
  { title: 'Family picnic', tags: ['family', 'picnic'], pattern: 'checks', colour: [150, 60, 170], isPublic: false, album: 0 },
  { title: 'My new flat', tags: ['home', 'private'], pattern: 'stripes', colour: [40, 170, 170], isPublic: false },
];
const STARTER_ALBUMS = ['Holidays', 'Garden'];
const DAY = 86_400;

function secretValue(): string {
  return randomBytes(5).toString('hex');
}

/** The simulated photo library: every user's photos and albums, kept in memory. */
export class Library {
  readonly #docs = new Map<string, SimulatedDoc>();
  readonly #albums = new Map<string, SimulatedAlbum>();
  readonly #seeded = new Set<string>();
  readonly #rendered = new Map<string, Buffer>();
  readonly #md5 = new Map<string, string>();
  #nextDoc = 100_001;
  #nextAlbum = 5_001;
  /** Bytes held by uploaded photos. */
  storedBytes = 0;

  constructor(readonly epoch = Math.floor(Date.now() / 1000)) {}

  /** Gives a user their starter photos and albums, once. */
  seed(userId: string): void {
    if (this.#seeded.has(userId)) return;
    this.#seeded.add(userId);
    const albums = STARTER_ALBUMS.map((title, index) => this.createAlbum(userId, title, '', this.epoch - (30 - index) * DAY));
    STARTER_PHOTOS.forEach((photo, index) => {
      const doc = this.#add({
        ownerId: userId,
        title: photo.title,
        description: '',
        tags: [...photo.tags],
        isPublic: photo.isPublic,
        isFriend: false,
        isFamily: !photo.isPublic && photo.tags.includes('family'),
        license: 0,
        postedAt: this.epoch - (STARTER_PHOTOS.length - index) * DAY,
        look: { pattern: photo.pattern, colour: photo.colour, background: [245, 245, 240] },
      });
      const album = photo.album === undefined ? undefined : albums[photo.album];
      if (album) this.addToAlbum(album, doc);
    });
  }

  /** Adds an uploaded photo to its owner's library. */
  addUpload(ownerId: string, upload: NonNullable<SimulatedDoc['upload']>, fields: Partial<Pick<SimulatedDoc, 'title' | 'description' | 'tags' | 'isPublic' | 'isFriend' | 'isFamily' | 'license'>>): SimulatedDoc {
    this.seed(ownerId);
    this.storedBytes += upload.bytes.length;
    return this.#add({
      ownerId,
      title: fields.title ?? upload.fileName.replace(/\.[^.]*$/, ''),
      description: fields.description ?? '',
      tags: fields.tags ?? [],
      isPublic: fields.isPublic ?? true,
      isFriend: fields.isFriend ?? false,
      isFamily: fields.isFamily ?? false,
      license: fields.license ?? 0,
      postedAt: Math.floor(Date.now() / 1000),
      upload,
    });
  }

  doc(docId: string): SimulatedDoc | undefined {
    return this.#docs.get(docId);
  }

  /** The photo when this viewer may see it: public, or the viewer's own with the permission to read private photos. */
  visibleDoc(docId: string, viewer: Viewer | undefined): SimulatedDoc | undefined {
    const doc = this.#docs.get(docId);
    return doc && this.canSee(doc, viewer) ? doc : undefined;
  }

  canSee(doc: SimulatedDoc, viewer: Viewer | undefined): boolean {
    return doc.isPublic || (viewer !== undefined && viewer.canReadPrivate && viewer.userId === doc.ownerId);
  }

  /** A user's photos this viewer may see, newest first. */
  docsOf(userId: string, viewer: Viewer | undefined): SimulatedDoc[] {
    this.seed(userId);
    return [...this.#docs.values()].filter((doc) => doc.ownerId === userId && this.canSee(doc, viewer)).sort((a, b) => b.postedAt - a.postedAt || Number(b.docId) - Number(a.docId));
  }

  /** Every photo this viewer may see (for searches without a user), newest first. */
  allDocs(viewer: Viewer | undefined): SimulatedDoc[] {
    return [...this.#docs.values()].filter((doc) => this.canSee(doc, viewer)).sort((a, b) => b.postedAt - a.postedAt || Number(b.docId) - Number(a.docId));
  }

  delete(doc: SimulatedDoc): void {
    this.#docs.delete(doc.docId);
    if (doc.upload) this.storedBytes -= doc.upload.bytes.length;
    for (const album of this.#albums.values()) {
      album.docIds = album.docIds.filter((id) => id !== doc.docId);
      if (album.coverId === doc.docId) album.coverId = album.docIds[0];
    }
    for (const key of this.#rendered.keys()) if (key.startsWith(`${doc.docId}/`)) this.#rendered.delete(key);
    this.#md5.delete(doc.docId);
  }

  createAlbum(ownerId: string, title: string, description: string, createdAt = Math.floor(Date.now() / 1000)): SimulatedAlbum {
    const album: SimulatedAlbum = { albumId: String(this.#nextAlbum++), ownerId, title, description, docIds: [], createdAt };
    this.#albums.set(album.albumId, album);
    return album;
  }

  album(albumId: string): SimulatedAlbum | undefined {
    return this.#albums.get(albumId);
  }

  albumsOf(userId: string): SimulatedAlbum[] {
    this.seed(userId);
    return [...this.#albums.values()].filter((album) => album.ownerId === userId);
  }

  addToAlbum(album: SimulatedAlbum, doc: SimulatedDoc): void {
    if (!album.docIds.includes(doc.docId)) album.docIds.push(doc.docId);
    album.coverId ??= doc.docId;
  }

  /** The sizes this photo is offered at: the generated sizes, or its own size for an upload. */
  sizes(doc: SimulatedDoc): MediaSize[] {
    if (!doc.upload) return [...MEDIA_SIZES];
    const { width = 0, height = 0 } = doc.upload.facts;
    return [{ label: 'original', width, height }];
  }

  /** The bytes and content type of one of the photo's sizes; undefined for a label it lacks. */
  media(doc: SimulatedDoc, label: string): { bytes: Buffer; type: string; ext: string } | undefined {
    if (doc.upload) return label === 'original' ? { bytes: doc.upload.bytes, type: doc.upload.facts.type, ext: doc.upload.facts.ext } : undefined;
    const size = MEDIA_SIZES.find((candidate) => candidate.label === label);
    if (!size || !doc.look) return undefined;
    const key = `${doc.docId}/${label}`;
    let bytes = this.#rendered.get(key);
    if (!bytes) {
      bytes = renderPng(doc.look, size.width, size.height);
      this.#rendered.set(key, bytes);
    }
    return { bytes, type: 'image/png', ext: 'png' };
  }

  /** The MD5 of the photo's original (as `doc.checkMD5` compares). */
  md5(doc: SimulatedDoc): string {
    let md5 = this.#md5.get(doc.docId);
    if (!md5) {
      const original = this.media(doc, 'original');
      md5 = createHash('md5').update(original?.bytes ?? Buffer.alloc(0)).digest('hex');
      this.#md5.set(doc.docId, md5);
    }
    return md5;
  }

  #add(fields: Omit<SimulatedDoc, 'docId' | 'secret'>): SimulatedDoc {
    const doc: SimulatedDoc = { docId: String(this.#nextDoc++), secret: secretValue(), ...fields };
    this.#docs.set(doc.docId, doc);
    return doc;
  }
}
