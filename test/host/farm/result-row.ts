/** A chip-database row for tests: a completed bring-up with no calibration figures, unless overridden. */
import type { ResultRow } from '../../../host/farm/db.ts';

export const resultRow = (over: Partial<ResultRow>): ResultRow => ({
  job_id: 'j',
  chip_id: 'c1',
  kind: 'bringup',
  status: 'completed',
  attempts: 1,
  stalls: 0,
  worker: 'w',
  host: 'h',
  submitted_at: null,
  finished_at: '2026-01-01T00:00:00.000Z',
  seconds: 1,
  error: null,
  artifacts: null,
  summary: '{}',
  ok: 1,
  mode: null,
  e_plus: null,
  e_minus: null,
  rmse_pnn_ticks: null,
  rmse_ideal_ticks: null,
  accuracy: null,
  profile: null,
  ...over,
});
