import { saveSession } from '../sessions/regenerate';
import { languageOf } from '../web/i18n';
import { flowEvent } from '../web/logging';
import type { AsyncHandler, FlowContext } from './context';

/** `POST /disconnect`: forgets the connection in this browser and says how to revoke it on ipernity. */
export function disconnect(ctx: FlowContext): AsyncHandler {
  return async function disconnect(req, res) {
    const connection = req.session.connection;
    if (connection) {
      delete req.session.connection;
      await saveSession(req);
    }
    ctx.attempts.clear(req, res);
    if (connection) flowEvent(req, ctx.logger, 'disconnected', { userId: connection.user.userId }, 'ipernity account disconnected');
    const { t } = languageOf(req);
    const app = ctx.ipernity.appName;
    ctx.render(req, res, 200, 'message', {
      title: t('disconnected.title'),
      paragraphs: [t('disconnected.message', { app }), t('disconnected.revoke', { app })],
    });
  };
}
