import type { Request, Response } from 'express';
import { languageOf } from '../web/i18n';
import { flowEvent } from '../web/logging';
import type { FlowContext } from './context';

/** Back from ipernity without an authorization: the visitor declined. Counted, logged, and said calmly. */
export function declined(ctx: FlowContext, req: Request, res: Response): void {
  ctx.metrics?.flowsFailed.inc({ reason: 'DENIED' });
  flowEvent(req, ctx.logger, 'denied', {}, 'the visitor declined on ipernity');
  const { t } = languageOf(req);
  ctx.render(req, res, 200, 'message', { title: t('denied.title'), paragraphs: [t('denied.message')] });
}
