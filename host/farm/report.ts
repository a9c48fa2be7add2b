/**
 * `spikeloop farm report`: one HTML page over the lot, from the chip database: yield, bring-up
 * findings per die, E+ / E- and calibration error distributions, each chip's current profile,
 * and the jobs that failed with their reasons. Plots and page come from host/report.
 */
import { relative, dirname } from 'node:path';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { histogram } from '../report/svg-plot.ts';
import type { ChipDb, ResultRow } from './db.ts';

type Summary = Record<string, any>;

/** The latest completed row of a kind per chip (rows come ordered by finish time). */
function latestPerChip(rows: ResultRow[], kind: string, pick: (r: ResultRow) => boolean = () => true): Map<string, ResultRow> {
  const m = new Map<string, ResultRow>();
  for (const r of rows) if (r.kind === kind && r.status === 'completed' && r.chip_id && pick(r)) m.set(r.chip_id, r);
  return m;
}

const fixed = (v: number | null | undefined, d: number) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toFixed(d)) : '');

export async function writeFarmReport(db: ChipDb, out: string): Promise<{ chips: number; jobs: number; yield: number | null; calibrated: number }> {
  const rows = db.results();
  // Every die the database knows of: announced by a worker, or named by a job's result.
  const known = db.chips();
  const chips = [...known];
  for (const id of new Set(rows.map((r) => r.chip_id).filter((c): c is string => c !== null)))
    if (!known.some((c) => c.chip_id === id))
      chips.push({
        chip_id: id,
        geometry: null,
        board_id: null,
        uri: null,
        worker: null,
        host: null,
        first_seen: '',
        last_seen: '',
        current_profile: null,
        profile_job: null,
        profile_at: null,
      });
  chips.sort((a, b) => a.chip_id.localeCompare(b.chip_id));
  const bringups = latestPerChip(rows, 'bringup');
  const fullCal = latestPerChip(rows, 'calibrate', (r) => r.mode === 'full');
  const anyCal = latestPerChip(rows, 'calibrate');
  const passed = [...bringups.values()].filter((r) => r.ok === 1).length;
  const yieldShare = bringups.size ? passed / bringups.size : null;
  const link = (p: string | null | undefined) => (p ? relative(dirname(out), p) : '');

  const sections: ReportSection[] = [];
  sections.push({
    title: 'Yield',
    blocks: [
      {
        kind: 'text',
        text: `Bring-up passed on ${passed} of ${bringups.size} die(s) that went through it (latest bring-up per die); ${anyCal.size} die(s) have a calibration, ${chips.filter((c) => c.current_profile).length} a current profile.`,
      },
      {
        kind: 'table',
        rows: chips.map((c) => {
          const b = bringups.get(c.chip_id);
          const cal = anyCal.get(c.chip_id);
          return {
            chip: c.chip_id,
            geometry: c.geometry ?? '',
            'bring-up': b ? (b.ok ? 'pass' : 'FAIL') : 'not run',
            'E+ (V)': fixed(cal?.e_plus, 3),
            'E- (V)': fixed(cal?.e_minus, 3),
            'RMSE PNN (ticks)': fixed(cal?.rmse_pnn_ticks, 3),
            'RMSE ideal (ticks)': fixed(cal?.rmse_ideal_ticks, 3),
          };
        }),
      },
    ],
  });

  const findings = [...bringups.values()].map((r) => {
    const s = JSON.parse(r.summary) as Summary;
    return {
      chip: r.chip_id,
      result: r.ok ? 'pass' : 'FAIL',
      'failed checks': (s.failed_checks ?? []).join('; '),
      'dead neurons': (s.dead_neurons ?? []).join(' '),
      'bad synapses': (s.bad_synapses ?? []).join(' '),
      'jitter (ticks)': fixed(s.jitter_ticks, 3),
      report: link(s.report),
    };
  });
  sections.push({
    title: 'Bring-up findings per die',
    blocks: findings.length ? [{ kind: 'table', rows: findings }] : [{ kind: 'text', text: 'No bring-up has finished yet.' }],
  });

  const cal = [...fullCal.values()];
  const blocks: ReportSection['blocks'] = [];
  if (cal.length) {
    const vals = (f: (r: ResultRow) => number | null) => cal.map(f).filter((v): v is number => v !== null);
    blocks.push({
      kind: 'plot',
      svg: histogram({
        series: [{ name: 'E+', values: vals((r) => r.e_plus) }],
        title: `E+ over ${cal.length} die(s)`,
        xLabel: 'E+ (V, normalised reversal potential)',
        yLabel: 'dies',
      }),
    });
    blocks.push({
      kind: 'plot',
      svg: histogram({
        series: [{ name: 'E-', values: vals((r) => r.e_minus) }],
        title: `E- over ${cal.length} die(s)`,
        xLabel: 'E- (V, normalised reversal potential)',
        yLabel: 'dies',
      }),
    });
    blocks.push({
      kind: 'plot',
      svg: histogram({
        series: [
          { name: 'PNN', values: vals((r) => r.rmse_pnn_ticks) },
          { name: 'ideal model', values: vals((r) => r.rmse_ideal_ticks) },
        ],
        title: 'held-out spike-time RMSE per die',
        xLabel: 'RMSE (timer ticks)',
        yLabel: 'dies',
      }),
    });
  } else blocks.push({ kind: 'text', text: 'No full calibration has finished yet.' });
  sections.push({ title: 'E+, E- and calibration error over the lot (latest full calibration per die)', blocks });

  sections.push({
    title: 'Current profile per chip',
    blocks: [
      {
        kind: 'table',
        rows: chips.map((c) => ({ chip: c.chip_id, profile: link(c.current_profile) || 'none', job: c.profile_job ?? '', since: c.profile_at ?? '' })),
      },
    ],
  });

  const failed = rows.filter((r) => r.status === 'failed');
  sections.push({
    title: 'Failed jobs',
    blocks: failed.length
      ? [{ kind: 'table', rows: failed.map((r) => ({ job: r.job_id, chip: r.chip_id ?? 'cpu', kind: r.kind, attempts: r.attempts, reason: r.error ?? '' })) }]
      : [{ kind: 'text', text: 'None.' }],
  });

  await writeHtmlReport(out, {
    title: 'Board farm: the lot',
    summary: {
      chips: chips.length,
      jobs: rows.length,
      'bring-up yield': yieldShare === null ? 'no bring-up yet' : `${passed}/${bringups.size}`,
      calibrated: anyCal.size,
      failed: failed.length,
    },
    sections,
  });
  return { chips: chips.length, jobs: rows.length, yield: yieldShare, calibrated: anyCal.size };
}
