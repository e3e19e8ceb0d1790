import express, { type Router } from 'express';
import { parseFault, type FaultSwitch } from './faults';
import type { SimulatorState } from './state';

/** `/__simulator/*`: steering for tests and benchmarks (faults, revocation); never mounted in production. */
export function controlRoutes(router: Router, state: SimulatorState, faults: FaultSwitch): void {
  const control = express.Router();
  control.use(express.json({ limit: '4kb' }));
  control.post('/faults', function setFault(req, res) {
    const fault = parseFault(req.body);
    if (!fault) {
      res.status(400).json({ error: 'a fault is {delayMs?, status? (400-599), notJson?, drop?, apiError? (1-999), cutUpload?, methods?, times?}' });
      return;
    }
    faults.set(fault);
    res.status(204).end();
  });
  control.delete('/faults', function clearFaults(_req, res) {
    faults.clear();
    res.status(204).end();
  });
  control.post('/revoke', function revoke(req, res) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const revoked = typeof body.userId === 'string' ? state.revokeUser(body.userId) : state.revoke(typeof body.token === 'string' ? body.token : undefined);
    res.json({ revoked });
  });
  router.use('/__simulator', control);
}
