import type { Request } from 'express';
import { en, type Catalogue, type MessageKey } from './locales/en';
import { fr } from './locales/fr';
import { de } from './locales/de';

export type { MessageKey } from './locales/en';

/** One catalogue per language; English is the fallback. */
export const CATALOGUES = { en, fr, de } as const satisfies Record<string, Catalogue>;
export type Lang = keyof typeof CATALOGUES;
export const LANGS = Object.keys(CATALOGUES) as Lang[];

/** Translates a key, replacing `{name}` placeholders; the caller's template escapes the result. */
export type Translate = (key: MessageKey, values?: Readonly<Record<string, string | number>>) => string;

export function translator(lang: Lang): Translate {
  const catalogue: Catalogue = CATALOGUES[lang];
  return (key, values) => {
    const text = catalogue[key] ?? en[key] ?? key;
    if (!values) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
  };
}

const translators = Object.fromEntries(LANGS.map((lang) => [lang, translator(lang)])) as Record<Lang, Translate>;

/** The visitor's language from `Accept-Language`, English when none of ours is asked for. */
export function languageOf(req: Request): { lang: Lang; t: Translate } {
  const header = req.headers['accept-language'];
  const lang = (header ? (req.acceptsLanguages(...LANGS) as Lang | false) : false) || 'en';
  return { lang, t: translators[lang] };
}
